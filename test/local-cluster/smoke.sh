#!/usr/bin/env bash
# Smoke test of a running local cluster (it starts nothing: run `cluster.sh up` first).
# Checks what trampoline relies on: a PVC binds and holds data, a pod starts from a
# locally imported image, `kubectl exec` carries stdin EOF (v5), port-forward reaches a
# port in the pod, and the pod network is fenced (no default route, empty resolv.conf).
# Everything it creates lives in one namespace, deleted at the end. Prints a PASS line per
# step and the closing `N passed, N failed` (test/lib.sh); the first failed step ends it,
# as the next ones build on it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib/common.sh"
source "$HERE/lib/images.sh"
# shellcheck source=test/lib.sh
source "$HERE/../lib.sh"

KUBECONFIG=$("$HERE/cluster.sh" kubeconfig)
export KUBECONFIG
NS=smoke-$$
POD=smoke
PF_PID=

# abort DESCRIPTION: the step failed; show the namespace's state and end the test.
abort() {
  fail "$*"
  kubectl -n "$NS" get pod,pvc -o wide >&2 2>/dev/null || true
  kubectl -n "$NS" describe pod "$POD" 2>/dev/null | tail -n 20 >&2 || true
  summary
  exit 1
}

cleanup() {
  if [[ -n $PF_PID ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
  fi
  kubectl delete namespace "$NS" --wait=true --timeout=120s >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$HERE/cluster.sh" status >/dev/null || abort "the cluster does not answer (cluster.sh up first)"

# A busybox image built like the pause image; imported only when containerd lacks it.
archive=$(busybox_archive)
[[ $(image_digest "$BUSYBOX_IMAGE") == "$(archive_digest "$archive")" ]] ||
  "$HERE/cluster.sh" import "$archive" "$BUSYBOX_IMAGE"
pass "image $BUSYBOX_IMAGE present"

kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: $POD}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: $BUSYBOX_IMAGE
      imagePullPolicy: Never
      command: [sh, -c]
      args:
        - mkdir -p /data/sub /www && echo persisted >/data/sub/probe &&
          echo port-forward-ok >/www/index.html && exec httpd -f -p 8080 -h /www
      ports: [{containerPort: 8080}]
      volumeMounts:
        - {name: data, mountPath: /data}
        - {name: data, mountPath: /sub, subPath: sub}
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: data}
EOF

# The PVC must bind through the host-path provisioner (default StorageClass `standard`).
pvc_bound() { [[ $(kubectl -n "$NS" get pvc data -o 'jsonpath={.status.phase}') == Bound ]]; }
poll 60 pvc_bound || abort "PVC did not bind"
pv=$(kubectl -n "$NS" get pvc data -o 'jsonpath={.spec.volumeName}')
pv_path=$(kubectl get pv "$pv" -o 'jsonpath={.spec.hostPath.path}')
pass "PVC bound to $pv ($pv_path)"

kubectl -n "$NS" wait --for=condition=Ready "pod/$POD" --timeout=120s >/dev/null || abort "pod not Ready"
pass "pod Ready"

# exec with stdin: cat only exits if the EOF of stdin reaches the container (v5).
out=$(echo hi | timeout 60 kubectl -n "$NS" exec -i "$POD" -- cat) || abort "exec with stdin failed or hung"
[[ $out == hi ]] || abort "exec echoed '$out', not 'hi'"
pass "exec stdin EOF (echo hi | kubectl exec -i -- cat)"

# The volume holds data, through a subPath too, and the data is in the state dir.
[[ $(kubectl -n "$NS" exec "$POD" -- cat /sub/probe) == persisted ]] || abort "subPath mount lacks the file"
[[ $(cat "$HOSTPATH_DATA/${pv_path#"$HOSTPATH_MOUNT"/}/sub/probe") == persisted ]] ||
  abort "PV data is not under $HOSTPATH_DATA"
pass "PVC data visible through subPath and under $HOSTPATH_DATA"

# port-forward to the pod's httpd on a free local port.
pf_log=$(mktemp)
kubectl -n "$NS" port-forward "pod/$POD" :8080 >"$pf_log" 2>&1 &
PF_PID=$!
# forwarding: the local port, once kubectl reports it (sets $port).
forwarding() {
  port=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$pf_log")
  [[ -n $port ]]
}
poll 120 forwarding || abort "port-forward did not start: $(cat "$pf_log")"
[[ $(curl -fsS --max-time 10 "http://127.0.0.1:$port/") == port-forward-ok ]] || abort "port-forward did not reach the pod"
kill "$PF_PID"
wait "$PF_PID" 2>/dev/null || true
PF_PID=
rm -f "$pf_log"
pass "port-forward 127.0.0.1:$port -> pod:8080"

# The fence, seen from inside the pod: routes only to the pod subnet, so any other
# address is unreachable. Route lookups only: nothing is sent anywhere.
routes=$(kubectl -n "$NS" exec "$POD" -- ip -4 route)
echo "$routes" | grep -q default && abort "pod has a default route: $routes"
[[ $(echo "$routes" | grep -vc "^$POD_CIDR ") == 0 ]] || abort "pod has a route outside $POD_CIDR: $routes"
kubectl -n "$NS" exec "$POD" -- ip route get 203.0.113.1 >/dev/null 2>&1 && abort "203.0.113.1 (TEST-NET-3) is routable from the pod"
kubectl -n "$NS" exec "$POD" -- ip route get "$NODE_IP" >/dev/null || abort "the node IP is not routable from the pod"
pass "pod routes: only $POD_CIDR ($routes)"
[[ -z $(kubectl -n "$NS" exec "$POD" -- cat /etc/resolv.conf) ]] || abort "pod resolv.conf is not empty"
pass "pod resolv.conf empty"

# Deleting the claim deletes the volume and its directory (reclaim policy Delete).
kubectl delete namespace "$NS" --wait=true --timeout=120s >/dev/null || abort "namespace deletion hung"
pv_gone() { ! kubectl get pv "$pv" >/dev/null 2>&1; }
poll 60 pv_gone || abort "PV $pv was not deleted"
[[ ! -e $HOSTPATH_DATA/${pv_path#"$HOSTPATH_MOUNT"/} ]] || abort "PV directory was left behind"
pass "namespace, PVC, PV and its directory deleted"

summary
