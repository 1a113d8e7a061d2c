# shellcheck shell=bash disable=SC2034 # pod_options: used by test/e2e/main.sh and the journeys
# Which cluster the e2e and bench stages use, and the test image it runs. Sourced by
# test/e2e/run.sh; uses `tramp` and `log`, and runs from the repository root.

# --- cluster selection -------------------------------------------------------------

cluster_kind=""
local_cluster_kept=""
choose_cluster() {
  local forced=${TRAMPOLINE_TEST_CLUSTER:-}
  # Pointed at a local cluster that is already up (TRAMPOLINE_KEEP_CLUSTER=1 earlier):
  # use it as it is, import into it, and leave it running.
  local local_kubeconfig
  if local_kubeconfig=$(test/local-cluster/cluster.sh kubeconfig 2>/dev/null) &&
    [[ ${KUBECONFIG:-} == "$local_kubeconfig" && ( -z $forced || $forced == local ) ]] && kubeconfig_answers; then
    cluster_kind=local
    local_cluster_kept=1
    return
  fi
  if [[ -z $forced || $forced == kubeconfig ]] && [[ -n ${KUBECONFIG:-} || -f $HOME/.kube/config ]]; then
    if kubeconfig_answers; then
      cluster_kind=kubeconfig
      return
    fi
    [[ $forced == kubeconfig ]] && { echo "test.sh: the kubeconfig's cluster does not answer" >&2; exit 1; }
  fi
  if [[ -z $forced || $forced == minikube ]] && command -v minikube >/dev/null; then
    minikube status >/dev/null 2>&1 || minikube start
    export KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config}
    cluster_kind=minikube
    return
  fi
  [[ $forced == minikube ]] && { echo "test.sh: minikube is not installed" >&2; exit 1; }
  log "bringing up the local cluster (test/local-cluster)"
  # From a clean slate: a previous run may have been killed without its teardown.
  test/local-cluster/cluster.sh down >&2
  KUBECONFIG=$(test/local-cluster/cluster.sh up)
  export KUBECONFIG
  cluster_kind=local
}

# The local cluster this run brought up goes down with it (unless asked to keep it).
release_cluster() {
  if [[ $cluster_kind == local && -z ${TRAMPOLINE_KEEP_CLUSTER:-}${local_cluster_kept} ]]; then
    test/local-cluster/cluster.sh down >&2 || true
  fi
}

kubeconfig_answers() {
  # The tool itself decides: status fails fast with a clear error when unreachable.
  tramp status --quiet >/dev/null 2>&1
}

# The image the pod runs: the offline test image unless TRAMPOLINE_TEST_IMAGE names one.
test_image=${TRAMPOLINE_TEST_IMAGE:-localhost/trampoline:test}
# Small requests: two instances must fit on a 2-core test node at once.
pod_options=(--image "$test_image" --pull-policy Never --cpu 250m --memory 512Mi:4Gi --no-default-cache)
provide_image() {
  [[ -n ${TRAMPOLINE_TEST_IMAGE:-} ]] && return
  log "building the offline test image"
  local archive
  archive=$(container/image/build-test-image.sh)
  case $cluster_kind in
    local) test/local-cluster/cluster.sh import "$archive" "$test_image" ;;
    minikube) minikube image load "$archive" ;;
    kubeconfig) echo "test.sh: set TRAMPOLINE_TEST_IMAGE to an image your cluster can pull (the test image is only built locally)" >&2; exit 1 ;;
  esac
}
