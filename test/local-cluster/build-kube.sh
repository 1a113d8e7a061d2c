#!/usr/bin/env bash
# Builds the multi-call Kubernetes binary (apiserver, controller-manager, scheduler,
# kubelet) from the Go module proxy, once per version, into a cache outside the work
# tree. Prints the directory holding the component symlinks.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/kube/go.mod")
cache=${TRAMPOLINE_CACHE:-/var/cache/trampoline}
out="$cache/kube/$version"

if [[ ! -x "$out/kube" ]]; then
  command -v go >/dev/null || { echo "build-kube: Go is needed to build Kubernetes $version" >&2; exit 1; }
  mkdir -p "$out"
  minor=${version#v1.}; minor=${minor%%.*}
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "build-kube: building Kubernetes $version (cold: 15-30 min on 2 cores)" >&2
  (cd "$here/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/kube.tmp" .)
  mv "$out/kube.tmp" "$out/kube"
fi
for component in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  ln -sfn kube "$out/$component"
done
echo "$out"
