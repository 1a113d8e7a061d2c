# shellcheck shell=bash disable=SC2016,SC2154 # single quotes: arguments of bash -c; globals: test.sh
# RBAC end to end, sourced by test.sh, which provides `tramp`, `check "description"
# command...`, `json_field`, kubectl (as a cluster admin) and $root. Safe under set -e: a
# failing step is a failed check, never the end of the journey.
#
#   rbac_journey WORK POD_OPTIONS...
#
# Proves container/rbac.yaml is complete: a user who is no admin, with a client
# certificate from the local cluster's CA in the group the file binds (trampoline-users),
# runs doctor and a whole journey in a namespace of its own where the file was applied as
# it ships. And that doctor, run by a user with no binding, names every missing right with
# its fix and exits 4. Needs the local cluster (its CA: test/local-cluster/cluster.sh
# user-kubeconfig); run from a git repository holding hello.nix (test/e2e/).

rbac_journey() {
  local work=$1
  shift
  local pod_options=("$@")
  local ns=trampoline-rbac-$$ name=rbac-$$ user_kc nobody_kc out err code result
  local cluster_sh=$root/test/local-cluster/cluster.sh
  err=$work/rbac.err

  user_kc=$("$cluster_sh" user-kubeconfig trampoline-e2e-user trampoline-users 2>"$err") ||
    { fail "a client certificate for a non-admin user ($(tail -n 1 "$err"))"; return 0; }
  nobody_kc=$("$cluster_sh" user-kubeconfig trampoline-e2e-nobody 2>"$err") ||
    { fail "a client certificate for a user without rights ($(tail -n 1 "$err"))"; return 0; }
  check "the user is no admin (may not list namespaces)" \
    bash -c '! kubectl --kubeconfig "$1" get namespaces >/dev/null 2>&1' _ "$user_kc"

  kubectl create namespace "$ns" >/dev/null 2>"$err" || { fail "create namespace $ns ($(cat "$err"))"; return 0; }
  check "container/rbac.yaml applies as it ships" bash -c 'kubectl apply -n "$1" -f "$2" >/dev/null' _ "$ns" "$root/container/rbac.yaml"

  # Everything below runs as the user (a context of its own, so its own local state too).
  as_user() { KUBECONFIG=$user_kc tramp "$@"; }
  local args=(--name "$name" -n "$ns")

  code=0
  out=$(as_user doctor "${args[@]}" --json 2>"$err") || code=$?
  check "doctor passes for the bound user (exit $code)" test "$code" = 0
  check "doctor --json says ok" test "$(json_field ok <<<"$out" 2>/dev/null)" = true
  # Not passing: subjects of findings that are not "pass" (status --all-namespaces rights aside).
  local not_passing
  not_passing=$(rbac_findings "$out" 'f.status !== "pass" && !f.subject.endsWith("(all namespaces)")' 'f.subject')
  check "doctor finds every right, the ClusterRole's optional ones too (${not_passing:-none missing})" test -z "$not_passing"

  out=$(as_user setup "${args[@]}" "${pod_options[@]}" --idle-timeout 0 --json 2>"$err") ||
    { fail "setup as the bound user ($(tail -n 3 "$err" | tr '\n' ' '))"; rbac_cleanup "$ns" "$name" "$user_kc"; return 0; }
  check "setup as the bound user: pod running" test "$(json_field phase <<<"$out")" = Running
  local arch
  arch=$(json_field arch <<<"$out")
  check "setup as the bound user read the node's arch through the ClusterRole ($arch)" grep -Eqx '[a-z0-9]+' <<<"${arch/null/}"

  out=$(as_user push-tarball "${args[@]}" --json 2>"$err") || true
  check "push-tarball as the bound user (pods/exec)" test "$(json_field tree <<<"$out" 2>/dev/null)" = "$(git rev-parse 'HEAD^{tree}')"

  out=$(as_user build "${args[@]}" -f hello.nix --json 2>"$err") || true
  result=$(json_field outputs.0 <<<"$out" 2>/dev/null || true)
  check "build -f hello.nix as the bound user ($result)" grep -q '^/nix/store/.*-hello-trampoline$' <<<"$result"
  code=0
  out=$(as_user shell "${args[@]}" -- "$result/bin/hello" 2>"$err") || code=$?
  local detail="exit $code"
  [ "$out" = "Hello from trampoline" ] || detail+=", printed '${out:0:80}', said '$(tail -n 3 "$err" | tr '\n' ' ')'"
  check "shell as the bound user runs the result ($detail)" test "$out" = "Hello from trampoline"
  check "ssh as the bound user (pods/portforward)" test "$(as_user ssh "${args[@]}" -- echo via-portforward 2>"$err" </dev/null)" = via-portforward

  out=$(as_user status "${args[@]}" --json 2>"$err") || true
  check "status as the bound user ($(json_field 0.phase <<<"$out" 2>/dev/null))" test "$(json_field 0.phase <<<"$out" 2>/dev/null)" = Running

  out=$(as_user down "${args[@]}" --json 2>"$err") || true
  check "down as the bound user" test "$(json_field deleted <<<"$out" 2>/dev/null)" = true
  code=0
  as_user clean "${args[@]}" --json >/dev/null 2>"$err" || code=$?
  check "clean as the bound user (exit $code)" test "$code" = 0
  check "clean left no labelled object" \
    test -z "$(kubectl get pods,pvc,secrets,configmaps,networkpolicies -n "$ns" -l "app.kubernetes.io/instance=$name" -o name 2>&1)"

  # The other checks fail where they should, through the same API: a namespace enforcing
  # Pod Security "baseline" (label and dry run), a StorageClass and an arch that do not exist.
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=baseline >/dev/null 2>&1 || true
  code=0
  out=$(as_user doctor "${args[@]}" --arch s390x --storage-class no-such-class --json 2>/dev/null) || code=$?
  check "doctor on a baseline namespace, no such class, no such arch: exit 6 (got $code)" test "$code" = 6
  check "each a failed finding with its fix" \
    test "$(rbac_findings "$out" 'f.status === "fail" && f.fix' 'f.check' | tr '\n' ' ')" = "pod-security admission storage-class node-arch "
  check "the dry run names the Pod Security violation" \
    grep -q 'violates PodSecurity' <<<"$(rbac_findings "$out" 'f.check === "admission"' 'f.message')"

  # A user the cluster knows but nothing binds: doctor names each missing right and the fix.
  code=0
  out=$(KUBECONFIG=$nobody_kc tramp doctor "${args[@]}" 2>"$err") || code=$?
  check "doctor without rights exits 4 (got $code)" test "$code" = 4
  check "and names the missing exec right" grep -qF 'FAIL  may not get, create pods/exec in namespace "'"$ns"'"' <<<"$out"
  check "with its fix" grep -qF 'fix: ask for "get", "create" on pods/exec in namespace "'"$ns"'"; the Role trampoline in container/rbac.yaml has it' <<<"$out"
  check "and the commands that grant everything" grep -qF "kubectl -n $ns create rolebinding trampoline-trampoline-e2e-nobody --role=trampoline --user=trampoline-e2e-nobody" <<<"$out"
  check "and says so on stderr" grep -q 'doctor: .* checks failed' "$err"
  code=0
  out=$(KUBECONFIG=$nobody_kc tramp doctor "${args[@]}" --json 2>/dev/null) || code=$?
  check "doctor --json without rights: exit 4, ok false" test "$code:$(json_field ok <<<"$out" 2>/dev/null)" = 4:false
  check "doctor --json lists every required right as failed, with the verbs missing" test \
    "$(rbac_findings "$out" 'f.check === "rbac" && f.status === "fail"' 'f.subject + ":" + f.missing.join(",")' | tr '\n' ' ')" = \
    "pods:get,list,watch,create,delete pods/exec:get,create pods/portforward:get,create pods/log:get persistentvolumeclaims:get,list,create,patch,delete secrets:get,list,create,patch,update,delete configmaps:get,list,create,update,delete events:list networkpolicies:get,list,create,update,delete "
  check "and every one with a fix" test -z "$(rbac_findings "$out" 'f.status === "fail" && !f.fix' 'f.subject')"
  code=0
  KUBECONFIG=$nobody_kc tramp setup "${args[@]}" "${pod_options[@]}" >/dev/null 2>"$err" || code=$?
  check "setup without rights exits 4 (got $code)" test "$code" = 4
  check "naming the right and container/rbac.yaml" grep -q 'The missing RBAC right: ".*" on .*container/rbac.yaml' "$err"

  rbac_cleanup "$ns" "$name" "$user_kc"
}

# rbac_findings DOCTOR_JSON FILTER MAP: one line per finding matching FILTER (a JS
# expression of f), printed as MAP.
rbac_findings() {
  "$node_bin" -e "for (const f of JSON.parse(process.argv[1]).findings ?? []) if ($2) console.log($3)" "$1" 2>/dev/null
}

# As the admin: the namespace (everything in it goes along) and the cluster-wide part of
# container/rbac.yaml.
rbac_cleanup() {
  local ns=$1 name=$2 user_kc=$3
  KUBECONFIG=$user_kc tramp clean --name "$name" -n "$ns" --quiet >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  kubectl delete clusterrolebinding trampoline-cluster-read --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete clusterrole trampoline-cluster-read --ignore-not-found >/dev/null 2>&1 || true
}
