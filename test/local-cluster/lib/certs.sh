# shellcheck shell=bash
# One CA (openssl) and every certificate and kubeconfig the cluster needs. Sourced.
# Kept across down/up so a kubeconfig handed out stays valid; remade when the plan
# below (names, addresses) changes.

CERT_DAYS=3650
APISERVER_SANS="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
APISERVER_SANS+=",DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
APISERVER_SANS+=",IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP"
KUBELET_SANS="DNS:$NODE_NAME,DNS:localhost,IP:$NODE_IP,IP:127.0.0.1"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# issue NAME SUBJECT USAGE [SANS]: NAME.crt/NAME.key signed by the CA.
issue() {
  local name=$1 subject=$2 usage=$3 sans=${4:-} ext
  new_key "$PKI/$name.key"
  ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [[ -z $sans ]] || ext+=$'\n'"subjectAltName=$sans"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days "$CERT_DAYS" -extfile <(echo "$ext") -out "$PKI/$name.crt" 2>/dev/null
}

# kubeconfig FILE USER CERTNAME [CONTEXT]: a kubeconfig with everything embedded.
kubeconfig() {
  local file=$1 user=$2 cert=$3 context=${4:-trampoline-local}
  rm -f "$file"
  kubectl config set-cluster trampoline-local --kubeconfig="$file" --embed-certs \
    --certificate-authority="$PKI/ca.crt" --server="https://127.0.0.1:$APISERVER_PORT" >/dev/null
  kubectl config set-credentials "$user" --kubeconfig="$file" --embed-certs \
    --client-certificate="$PKI/$cert.crt" --client-key="$PKI/$cert.key" >/dev/null
  kubectl config set-context "$context" --kubeconfig="$file" \
    --cluster=trampoline-local --user="$user" >/dev/null
  kubectl config use-context "$context" --kubeconfig="$file" >/dev/null
  chmod 0600 "$file"
}

# user_kubeconfig NAME [GROUP...]: a kubeconfig (context trampoline-local-NAME) for user
# NAME in GROUPs, with a client certificate from the cluster's CA; prints its path. The
# user has no rights until something binds NAME or a GROUP. Reused while the CA and
# subject stay the same; ensure_certs removes it with the rest of $PKI when the CA changes.
user_kubeconfig() {
  local name=$1 group subject file
  shift
  [[ $name =~ ^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$ ]] || die "user-kubeconfig: NAME must be lowercase letters, digits, '.' or '-' (got '$name')"
  subject="/CN=$name"
  for group; do
    [[ $group =~ ^[a-zA-Z0-9:._-]+$ ]] || die "user-kubeconfig: bad GROUP '$group'"
    [[ $group != system:masters ]] || die "user-kubeconfig: system:masters would bypass RBAC; use the admin kubeconfig for that"
    subject="/O=$group$subject"
  done
  [[ -r $PKI/ca.key && -f $KUBECONFIG_ADMIN ]] || die "no cluster CA readable at $PKI (run cluster.sh up, as root)"
  file=$PKI/users/$name.kubeconfig
  if [[ -f $file && -f $PKI/users/$name.subject && $(cat "$PKI/users/$name.subject") == "$subject" ]]; then
    echo "$file"
    return 0
  fi
  mkdir -p "$PKI/users" && chmod 0700 "$PKI/users"
  issue "users/$name" "$subject" clientAuth
  kubeconfig "$file.tmp" "$name" "users/$name" "trampoline-local-$name"
  mv -f "$file.tmp" "$file"
  echo "$subject" >"$PKI/users/$name.subject"
  log "user $name ($subject): $file"
  echo "$file"
}

ensure_certs() {
  local plan="v1 $NODE_NAME $APISERVER_SANS $KUBELET_SANS $APISERVER_PORT"
  if [[ -f $PKI/plan && $(cat "$PKI/plan") == "$plan" && -f $KUBECONFIG_ADMIN ]]; then
    return 0
  fi
  log "making the CA, certificates and kubeconfigs"
  rm -rf "$PKI" && mkdir -p "$PKI" && chmod 0700 "$PKI"
  new_key "$PKI/ca.key"
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=trampoline-local-ca" -days "$CERT_DAYS" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/ca.crt" 2>/dev/null
  issue apiserver "/CN=kube-apiserver" serverAuth "$APISERVER_SANS"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  issue admin "/O=system:masters/CN=trampoline-admin" clientAuth
  issue controller-manager "/CN=system:kube-controller-manager" clientAuth
  issue scheduler "/CN=system:kube-scheduler" clientAuth
  issue node "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  issue kubelet "/CN=$NODE_NAME" serverAuth "$KUBELET_SANS"
  # Service-account tokens: the apiserver signs with the private key, verifies with the public.
  new_key "$PKI/sa.key"
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  kubeconfig "$PKI/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  kubeconfig "$PKI/scheduler.kubeconfig" system:kube-scheduler scheduler
  kubeconfig "$PKI/kubelet.kubeconfig" "system:node:$NODE_NAME" node
  kubeconfig "$KUBECONFIG_ADMIN.tmp" trampoline-admin admin
  mv "$KUBECONFIG_ADMIN.tmp" "$KUBECONFIG_ADMIN"
  echo "$plan" >"$PKI/plan"
}
