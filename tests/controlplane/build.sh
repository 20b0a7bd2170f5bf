#!/usr/bin/env bash
# Build the cluster tier's control plane from Go modules: kube-apiserver, kube-controller-manager and
# kube-scheduler from k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, at the versions go.mod
# pins; and Kueue's manager (sigs.k8s.io/kueue, pinned in kueue/go.mod) with the CRDs and webhook manifests
# its module ships. The binaries go to cache folders outside the work tree, keyed by those versions; a later
# run reuses them, and a run started while another builds waits for it. Prints the control plane's folder
# (what the envtest convention calls KUBEBUILDER_ASSETS) on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")"

version() {  # of module $1 in go.mod (or in $2): in a require block, or on a require line of its own
  awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "${2:-go.mod}"
}
kubernetes="$(version k8s.io/kubernetes)"
etcd="$(version go.etcd.io/etcd/server/v3)"
kueue="$(version sigs.k8s.io/kueue kueue/go.mod)"
cache="${WORKLOAD_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workload-operator/controlplane}"
assets="$cache/kubernetes-$kubernetes-etcd-$etcd"
kueue_assets="$cache/kueue-$kueue"
commands=(kube-apiserver kube-controller-manager kube-scheduler etcd)

built() { for c in "${commands[@]}"; do [ -x "$assets/$c" ] || return 1; done; }
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second caller waits, then finds the binaries built
need_go() { command -v go >/dev/null || { echo "control plane: the go command is needed to build $1" >&2; exit 1; }; }
export CGO_ENABLED=0  # static binaries, and no C toolchain needed

# Kueue's manager, and the CRDs and webhook configurations of the same module (what its releases install).
build_kueue() {
  [ -x "$kueue_assets/kueue" ] && return 0
  need_go "$kueue_assets"
  local start=$SECONDS staging
  staging="$(mktemp -d "$kueue_assets.partial.XXXXXX")"
  echo "control plane: building Kueue $kueue into $kueue_assets (about 110 MB of Go modules; minutes)" >&2
  (cd kueue && go build -p "${GO_BUILD_JOBS:-2}" -trimpath -buildvcs=false -ldflags "-s -w" -o "$staging/kueue" \
     sigs.k8s.io/kueue/cmd/kueue)
  local module
  module="$(cd kueue && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
  mkdir "$staging/crds"
  cp "$module"/config/components/crd/bases/*.yaml "$staging/crds/"
  cp "$module/config/components/webhook/manifests.yaml" "$staging/webhooks.yaml"
  chmod -R u+w,go+r "$staging" && chmod 755 "$staging" "$staging/crds"
  rm -rf "$kueue_assets"
  mv "$staging" "$kueue_assets"
  echo "control plane: Kueue built in $((SECONDS - start)) s" >&2
}

if built; then
  echo "control plane: reusing $assets" >&2
  build_kueue
  echo "$assets"
  exit 0
fi

need_go "$assets"
start=$SECONDS
staging="$(mktemp -d "$assets.partial.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
minor="${kubernetes#v1.}"; minor="${minor%%.*}"
# What `kubectl version` and the server's /version report: a build from the module cache has no git tree to read.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kubernetes -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
echo "control plane: building Kubernetes $kubernetes and etcd $etcd into $assets" \
     "(the first build downloads about 140 MB of Go modules and takes about 11 minutes on 2 cores)" >&2
go build -p "${GO_BUILD_JOBS:-2}" -trimpath -buildvcs=false -tags providerless -ldflags "$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
go build -p "${GO_BUILD_JOBS:-2}" -trimpath -buildvcs=false -ldflags "-s -w" -o "$staging/etcd" ./etcd
rm -rf "$assets"
chmod 755 "$staging"
mv "$staging" "$assets"
trap - EXIT
echo "control plane: built in $((SECONDS - start)) s" >&2
build_kueue
echo "$assets"
