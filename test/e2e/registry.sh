# shellcheck shell=bash disable=SC2016,SC2154 # single quotes: bash -c scripts; globals: test.sh
# Image pulls from a real registry with password authentication (tracker issue 10, part 4).
# Sourced by test.sh, which provides `tramp`, `check`, `log`, `json_field`, $root and
# $cluster_kind. Safe under set -e: a failing step is a failed check, never the end of the
# journey.
#
#   registry_journey WORK --name <instance> -n <namespace>
#   registry_cleanup    idempotent; the e2e's EXIT cleanup calls it too (an aborted run)
#
# The test host runs CNCF distribution (Debian's docker-registry, installed by the local
# cluster's deps.sh) with its own config: bound to the local cluster's bridge address only
# (the harness's own network), storage in WORK, htpasswd (bcrypt) with a random password
# made per run. skopeo pushes the offline test image into it, with one small layer of this
# run on top (umoci insert: a file the pod must show, so the pull cannot have been served
# by the layers the node already has). containerd on the node learns the registry the
# ordinary way, from a hosts.toml ("plain HTTP, pull and resolve") in the hosts directory
# its CRI config names (config_path, lib/configs.sh). The pod then pulls the image with a
# kubernetes.io/dockerconfigjson pull secret (setup --image-pull-secret); a secret with a
# wrong password must make setup fail fast and say why.
#
# Instances `<instance>-reg` and `<instance>-regdenied`, two pull secrets, a hosts.toml,
# the registry process (its PID in registry_pid) and storage, and the image references the
# pull left on the node: all removed by registry_cleanup. No password is ever on a command
# line or in a log: passwords live in files of mode 0600 in WORK and reach htpasswd, curl
# and base64 on stdin.
#
# Only on the local cluster: elsewhere the node could not reach this host's registry.

registry_pid=
registry_dir=
registry_host=        # 10.213.0.1:<port>
registry_hosts_entry= # the hosts.toml directory this run made
registry_sock=        # the local cluster's containerd socket
registry_namespace=
registry_instances=()
registry_secrets=()

REGISTRY_MARKER=/etc/trampoline-e2e-registry-run # the file of the run's own layer

registry_skip() { printf 'SKIP %s\n' "$*"; }

# registry_last_layer LAYOUT: the digest of the top layer of the (only) image in an OCI layout.
registry_last_layer() {
  "$node_bin" -e 'const fs=require("fs"),d=process.argv[1],b=(x)=>JSON.parse(fs.readFileSync(d+"/blobs/"+x.replace(":","/")));const m=b(JSON.parse(fs.readFileSync(d+"/index.json")).manifests[0].digest);console.log(m.layers[m.layers.length-1].digest)' "$1"
}


# registry_auth_file FILE USER: a docker config.json (auths.<host>.auth = base64 user:pass)
# for the password read from stdin; mode 0600.
registry_auth_file() {
  local file=$1 user=$2 pass auth
  IFS= read -r pass
  auth=$(printf '%s:%s' "$user" "$pass" | base64 -w0)
  (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry_host" "$auth" >"$file")
  chmod 0600 "$file"
}

registry_new_password() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# registry_http PATH [CURL ARGS...]: the status code of a GET on the registry (no proxy).
registry_http() {
  local path=$1
  shift
  curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "http://$registry_host$path"
}

# registry_start WORK: config, htpasswd, the process on a free port of the bridge address.
# Sets registry_host and leaves the password in $registry_dir/password (0600).
registry_start() {
  local work=$1 node_ip port try code deadline
  node_ip=$(source "$root/test/local-cluster/lib/common.sh" && echo "$NODE_IP")
  registry_dir=$work/registry
  mkdir -p "$registry_dir/data"
  chmod 0700 "$registry_dir"
  (umask 077 && registry_new_password >"$registry_dir/password")
  htpasswd -iBc "$registry_dir/htpasswd" e2e <"$registry_dir/password" >/dev/null 2>&1 ||
    { echo "registry: htpasswd failed" >&2; return 1; }
  for ((try = 0; try < 10; try++)); do
    port=$((15000 + RANDOM % 1000))
    [[ -z $(ss -Hltn "sport = :$port" 2>/dev/null) ]] || continue
    registry_host=$node_ip:$port
    cat >"$registry_dir/config.yml" <<EOF
# The e2e's registry (test/e2e/registry.sh): the local cluster's bridge address only.
version: 0.1
log:
  level: info
  fields: {service: trampoline-e2e-registry}
storage:
  filesystem: {rootdirectory: $registry_dir/data}
  delete: {enabled: true}
http:
  addr: $registry_host
  secret: $(head -c 24 /dev/urandom | base64 -w0)
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: trampoline-e2e
    path: $registry_dir/htpasswd
EOF
    docker-registry serve "$registry_dir/config.yml" >"$registry_dir/registry.log" 2>&1 </dev/null &
    registry_pid=$!
    deadline=$((SECONDS + 30))
    while :; do
      code=$(registry_http /v2/) || true
      [[ $code == 401 ]] && return 0 # up, and asking for a password
      kill -0 "$registry_pid" 2>/dev/null || break
      ((SECONDS < deadline)) || { registry_stop_process; echo "registry: no answer on $registry_host after 30s" >&2; return 1; }
      sleep 0.2
    done
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=
    grep -q 'address already in use' "$registry_dir/registry.log" || break
  done
  echo "registry: did not start: $(tail -n 5 "$registry_dir/registry.log")" >&2
  return 1
}

registry_stop_process() {
  [[ -n $registry_pid ]] || return 0
  kill "$registry_pid" 2>/dev/null || true
  wait "$registry_pid" 2>/dev/null || true
  registry_pid=
}

# The local cluster's containerd must read the hosts directory and reach the bridge
# address without its dead-end proxy: both come with `cluster.sh up` (or, on a cluster
# that was up before, `cluster.sh restart-containerd`).
registry_containerd_ready() {
  local pid config
  pid=$(cat "$registry_state/run/containerd.pid" 2>/dev/null) || return 1
  config=$registry_state/containerd/config.toml
  grep -qF "config_path = \"$registry_hosts_dir\"" "$config" &&
    tr '\0' '\n' <"/proc/$pid/environ" | grep -x "NO_PROXY=$registry_node_ip" >/dev/null &&
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -xF "$config" >/dev/null
}

# registry_pod_images NAMESPACE POD: every container's image, one a line.
registry_pod_images() {
  kubectl get pod "$2" -n "$1" -o jsonpath='{range .spec.initContainers[*]}{.image}{"\n"}{end}{range .spec.containers[*]}{.image}{"\n"}{end}'
}

# (`producer | grep >/dev/null`, not grep -q: under pipefail, grep -q's early exit can fail
# the producer with SIGPIPE.)
registry_node_has() { ctr -n k8s.io --address "$registry_sock" images ls -q 2>/dev/null | grep -xF "$1" >/dev/null; }
registry_node_lacks() { ! registry_node_has "$1"; }

# registry_node_refs: the node's image references of this run's registry: its tags and
# repo digests, and the CRI's image-ID reference (sha256:<config>) to the same manifest
# (this run's own: it has the run's layer), never one of another image.
registry_node_refs() {
  [[ -n $registry_host ]] || return 0
  ctr -n k8s.io --address "$registry_sock" images ls 2>/dev/null | awk -v p="$registry_host/" '
    NR > 1 { ref[NR] = $1; digest[NR] = $3; if (index($1, p) == 1) ours[$3] = 1 }
    END { for (i in ref) if (index(ref[i], p) == 1 || (ref[i] ~ /^sha256:/ && digest[i] in ours)) print ref[i] }'
}

registry_node_clean() {
  local deadline=$((SECONDS + 10))
  until [[ -z $(registry_node_refs) ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# registry_pod_runs NAMESPACE POD REF: the pod exists and every container runs REF.
registry_pod_runs() {
  local images
  images=$(registry_pod_images "$1" "$2") && [[ -n $images ]] && ! grep -qvxF "$3" <<<"$images"
}

# registry_tags_are REPO TAG...: the registry lists exactly these tags (read with the password).
registry_tags_are() {
  local repo=$1 got
  shift
  got=$(env -u HTTP_PROXY -u http_proxy skopeo list-tags --tls-verify=false --authfile "$registry_dir/auth.json" \
    "docker://$repo" 2>/dev/null | "$node_bin" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).Tags.sort().join(" ")))') &&
    [[ $got == "$(printf '%s\n' "$@" | LC_ALL=C sort | paste -sd' ')" ]]
}

# registry_catalog_with PASSWORD_FILE: the status of a catalog read as user e2e (curl reads
# the credentials from its config on stdin, not from its command line).
registry_catalog_with() {
  printf 'user = "e2e:%s"\n' "$(cat "$1")" |
    curl --noproxy '*' -K - -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$registry_host/v2/_catalog"
}

# registry_event_pulled NAMESPACE POD REF: the kubelet recorded a real pull of REF.
registry_event_pulled() {
  [[ $(kubectl get events -n "$1" --field-selector "involvedObject.name=$2,reason=Pulled" -o jsonpath='{.items[*].message}') == *"Successfully pulled image \"$3\""* ]]
}

registry_listens_only_on() { [[ $(ss -Hltn "sport = :${1##*:}" | awk '{print $4}') == "$1" ]]; }
registry_port_free() { [[ -z $(ss -Hltn "sport = :${1##*:}") ]]; }

registry_journey() {
  local work=$1
  shift
  local instance namespace archive ref denied_ref out code started elapsed secret denied_secret name marker marker_layer
  if [[ $cluster_kind != local ]]; then
    registry_skip "registry pulls: they need the local cluster (its containerd reads the harness's hosts.toml)"
    return 0
  fi
  instance=$(journey_arg --name "$@")
  namespace=$(journey_arg -n "$@")
  namespace=${namespace:-default}
  registry_namespace=$namespace
  eval "$(source "$root/test/local-cluster/lib/common.sh" && source "$root/test/local-cluster/lib/configs.sh" &&
    printf 'registry_state=%q registry_node_ip=%q registry_sock=%q registry_hosts_dir=%q\n' \
      "$STATE" "$NODE_IP" "$CONTAINERD_SOCK" "$CONTAINERD_HOSTS_DIR")"
  if ! registry_containerd_ready; then
    fail "the local cluster's containerd reads no registry hosts directory or cannot reach $registry_node_ip (run test/local-cluster/cluster.sh restart-containerd)"
    return 0
  fi

  registry_start "$work" || { fail "starting the e2e registry (docker-registry) on the bridge address"; return 0; }
  check "the registry listens on the bridge address only ($registry_host)" registry_listens_only_on "$registry_host"
  check "the registry refuses reads without a password (401)" test "$(registry_http /v2/_catalog)" = 401
  (umask 077 && registry_new_password >"$registry_dir/denied-password")
  check "the registry accepts the run's password" test "$(registry_catalog_with "$registry_dir/password")" = 200
  check "the registry refuses a wrong password (401)" test "$(registry_catalog_with "$registry_dir/denied-password")" = 401

  # The auth files: the right password for the push and the good secret, a wrong one.
  registry_auth_file "$registry_dir/auth.json" e2e <"$registry_dir/password"
  registry_auth_file "$registry_dir/denied.json" e2e <"$registry_dir/denied-password"
  check "auth files are private (0600)" test "$(stat -c %a "$registry_dir/auth.json" "$registry_dir/denied.json" | sort -u)" = 600

  # Plain HTTP to this host: the ordinary containerd way, read at every pull.
  registry_hosts_entry=$registry_hosts_dir/$registry_host
  mkdir -p "$registry_hosts_entry"
  cat >"$registry_hosts_entry/hosts.toml" <<EOF
# test/e2e/registry.sh (removed at the end of the run)
server = "http://$registry_host"

[host."http://$registry_host"]
  capabilities = ["pull", "resolve"]
EOF

  ref=$registry_host/trampoline:e2e-$$
  denied_ref=$registry_host/trampoline:e2e-$$-denied
  # The offline test image plus one small layer of this run: the node has every other
  # layer already (the test image is imported), this one only the registry has, so the
  # pod can only show it if containerd really fetched it from there.
  archive=$("$root/container/image/build-test-image.sh") || { fail "the offline test image archive (build-test-image.sh)"; return 0; }
  marker="pulled from the e2e registry, run $$"
  echo "$marker" >"$registry_dir/marker"
  if ! { skopeo copy --quiet "oci-archive:$archive" "oci:$registry_dir/layout:e2e" >"$registry_dir/push.log" 2>&1 &&
    umoci insert --image "$registry_dir/layout:e2e" "$registry_dir/marker" "$REGISTRY_MARKER" >>"$registry_dir/push.log" 2>&1 &&
    marker_layer=$(registry_last_layer "$registry_dir/layout"); }; then
    fail "the test image with a layer of this run (skopeo, umoci): $(tail -n 3 "$registry_dir/push.log")"
    return 0
  fi
  for out in "$ref" "$denied_ref"; do
    env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy \
      skopeo copy --quiet "oci:$registry_dir/layout:e2e" "docker://$out" --dest-tls-verify=false \
      --dest-authfile "$registry_dir/auth.json" >>"$registry_dir/push.log" 2>&1 ||
      { fail "skopeo pushed the test image as $out: $(tail -n 3 "$registry_dir/push.log")"; return 0; }
  done
  rm -rf "$registry_dir/layout"
  check "the registry has both tags (skopeo list-tags with the password)" \
    registry_tags_are "$registry_host/trampoline" "e2e-$$" "e2e-$$-denied"
  check "neither tag is on the node yet (so the pod must pull)" registry_node_lacks "$ref"
  check "(nor the second one)" registry_node_lacks "$denied_ref"

  secret=trampoline-e2e-$$-pull
  denied_secret=trampoline-e2e-$$-pull-denied
  registry_secrets=("$secret" "$denied_secret")
  if ! { kubectl create secret generic "$secret" -n "$namespace" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$registry_dir/auth.json" >/dev/null &&
    kubectl create secret generic "$denied_secret" -n "$namespace" --type=kubernetes.io/dockerconfigjson \
      --from-file=.dockerconfigjson="$registry_dir/denied.json" >/dev/null; }; then
    fail "creating the pull secrets"
    return 0
  fi

  log "registry: setup pulls the image with a pull secret"
  name=$instance-reg
  registry_instances=("$name" "$instance-regdenied")
  local args=(--name "$name" -n "$namespace")
  local reg_options=(--pull-policy IfNotPresent --cpu 250m --memory 512Mi:4Gi --no-default-cache --idle-timeout 0)
  out=$(tramp setup "${args[@]}" --image "$ref" --image-pull-secret "$secret" "${reg_options[@]}" --json 2>"$registry_dir/setup.err") ||
    { fail "setup with an image from the registry: $(tail -n 3 "$registry_dir/setup.err")"; }
  check "setup with the registry image reports a running pod" test "$(json_field phase <<<"$out" 2>/dev/null)" = Running
  check "every container of the pod runs the registry image" registry_pod_runs "$namespace" "trampoline-$name" "$ref"
  check "the pod names the pull secret" \
    test "$(kubectl get pod "trampoline-$name" -n "$namespace" -o jsonpath='{.spec.imagePullSecrets[*].name}')" = "$secret"
  check "containerd on the node pulled it ($ref listed by ctr)" registry_node_has "$ref"
  check "the kubelet pulled it (event: Successfully pulled image)" registry_event_pulled "$namespace" "trampoline-$name" "$ref"
  check "the registry served the tag to containerd (access log)" \
    grep -qE "\"(HEAD|GET) /v2/trampoline/manifests/e2e-$$ HTTP/[0-9.]+\" 200 [0-9]+ \"[^\"]*\" \"containerd/" "$registry_dir/registry.log"
  check "containerd fetched this run's layer from the registry (access log: GET ${marker_layer:0:19}... 200)" \
    grep -qE "\"GET /v2/trampoline/blobs/$marker_layer HTTP/[0-9.]+\" 200 [0-9]+ \"[^\"]*\" \"containerd/" "$registry_dir/registry.log"
  check "shell runs in the pulled image (UID 1000)" test "$(tramp shell "${args[@]}" -- id -u 2>/dev/null)" = 1000
  check "the pod's root file system has the layer only the registry had" \
    test "$(tramp shell "${args[@]}" -- cat "$REGISTRY_MARKER" 2>/dev/null)" = "$marker"

  # One registry pod at a time: next to the e2e's own pods, two may not fit a 2-core node.
  tramp clean "${args[@]}" --quiet >/dev/null 2>&1 || fail "clean of $name"

  log "registry: a wrong password in the pull secret"
  code=0
  started=$SECONDS
  tramp setup --name "$instance-regdenied" -n "$namespace" --image "$denied_ref" --image-pull-secret "$denied_secret" \
    "${reg_options[@]}" --timeout 90s >/dev/null 2>"$registry_dir/denied.err" || code=$?
  elapsed=$((SECONDS - started))
  check "setup with a wrong registry password fails as 'the pod could not start' (exit 6, got $code, ${elapsed}s)" test "$code" = 6
  check "it fails within its --timeout (${elapsed}s <= 95s)" test "$elapsed" -le 95
  check "the message says the image cannot be pulled: $(grep -m 1 -F 'cannot pull' "$registry_dir/denied.err")" \
    grep -qF "cannot pull image $denied_ref" "$registry_dir/denied.err"
  check "the message says why: the registry refused the credentials (401 Unauthorized)" \
    grep -qiE '401|unauthori[sz]ed' "$registry_dir/denied.err"
  check "the denied tag was not pulled" registry_node_lacks "$denied_ref"
  check "no output or log of this journey names the password" \
    bash -c '! grep -qFf "$1" "$2"/*.err "$2"/*.log' _ "$registry_dir/password" "$registry_dir"

  log "registry: clean"
  registry_cleanup
  check "clean leaves no labelled object of the registry instances" \
    test -z "$(kubectl get pods,pvc,secrets,configmaps -n "$namespace" -l "app.kubernetes.io/instance in ($name,$instance-regdenied)" -o name 2>&1)"
  check "the pull secrets are gone" \
    test -z "$(kubectl get secrets -n "$namespace" --ignore-not-found -o name "$secret" "$denied_secret" 2>&1)"
  check "the registry process is gone and nothing listens on its port" registry_port_free "$registry_host"
  check "no image reference of this run's registry is left on the node" registry_node_clean
  check "the hosts.toml of this run is gone" test ! -e "$registry_hosts_dir/$registry_host"
}

# Everything registry_journey made, whatever state it reached (also from the EXIT trap).
registry_cleanup() {
  local name
  for name in "${registry_instances[@]}"; do
    tramp clean --name "$name" -n "$registry_namespace" --quiet >/dev/null 2>&1 || true
  done
  registry_instances=()
  if ((${#registry_secrets[@]})); then
    kubectl delete secret -n "$registry_namespace" --ignore-not-found "${registry_secrets[@]}" >/dev/null 2>&1 || true
  fi
  registry_secrets=()
  registry_stop_process
  # The pods are gone (clean waits for them): the node's references of this run go too.
  local refs
  mapfile -t refs < <(registry_node_refs)
  if ((${#refs[@]})); then
    ctr -n k8s.io --address "$registry_sock" images rm --sync "${refs[@]}" >/dev/null 2>&1 || true
  fi
  if [[ -n $registry_hosts_entry ]]; then
    rm -f "$registry_hosts_entry/hosts.toml"
    rmdir "$registry_hosts_entry" 2>/dev/null || true
  fi
  registry_hosts_entry=
  [[ -z $registry_dir ]] || rm -rf "$registry_dir"
  registry_dir=
}
