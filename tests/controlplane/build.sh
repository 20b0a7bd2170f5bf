#!/usr/bin/env bash
# Build the cluster tier's control plane from Go modules: kube-apiserver, kube-controller-manager and
# kube-scheduler from k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, at the versions go.mod
# pins. The binaries go to a cache folder outside the work tree, keyed by those versions; a later run reuses
# them, and a run started while another builds waits for it. Prints the folder (what the envtest convention
# calls KUBEBUILDER_ASSETS) on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")"

version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod; }
kubernetes="$(version k8s.io/kubernetes)"
etcd="$(version go.etcd.io/etcd/server/v3)"
cache="${WORKLOAD_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workload-operator/controlplane}"
assets="$cache/kubernetes-$kubernetes-etcd-$etcd"
commands=(kube-apiserver kube-controller-manager kube-scheduler etcd)

built() { for c in "${commands[@]}"; do [ -x "$assets/$c" ] || return 1; done; }
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second caller waits, then finds the binaries built
if built; then
  echo "control plane: reusing $assets" >&2
  echo "$assets"
  exit 0
fi

command -v go >/dev/null || { echo "control plane: the go command is needed to build $assets" >&2; exit 1; }
start=$SECONDS
staging="$(mktemp -d "$assets.partial.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
minor="${kubernetes#v1.}"; minor="${minor%%.*}"
# What `kubectl version` and the server's /version report: a build from the module cache has no git tree to read.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kubernetes -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
echo "control plane: building Kubernetes $kubernetes and etcd $etcd into $assets" \
     "(the first build downloads about 140 MB of Go modules and takes about 11 minutes on 2 cores)" >&2
export CGO_ENABLED=0  # static binaries, and no C toolchain needed
go build -p "${GO_BUILD_JOBS:-2}" -trimpath -buildvcs=false -tags providerless -ldflags "$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
go build -p "${GO_BUILD_JOBS:-2}" -trimpath -buildvcs=false -ldflags "-s -w" -o "$staging/etcd" ./etcd
rm -rf "$assets"
chmod 755 "$staging"
mv "$staging" "$assets"
trap - EXIT
echo "control plane: built in $((SECONDS - start)) s" >&2
echo "$assets"
