#!/usr/bin/env bash
# Provides kube-apiserver, etcd and kube-controller-manager (and helm) for the
# tests and the demo, the way envtest does: from $KUBEBUILDER_ASSETS when set,
# otherwise built once through the Go module proxy into a cache folder outside
# the repo. Prints the folder holding the binaries on its last line.
#
# usage: hack/kube-binaries.sh [--with-helm]
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
CACHE="${FLAGOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flagops}"
BIN="$CACHE/bin/k8s-${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}"
with_helm=0
[ "${1:-}" = "--with-helm" ] && with_helm=1

log() { echo "kube-binaries: $*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
  BIN="$KUBEBUILDER_ASSETS"
  log "using \$KUBEBUILDER_ASSETS=$BIN"
else
  mkdir -p "$BIN"
  export GOFLAGS="-mod=mod" GOTOOLCHAIN=local CGO_ENABLED=0
  if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ]; then
    log "building kube-apiserver and kube-controller-manager $KUBERNETES_VERSION (once; several minutes)"
    work="$CACHE/src/kubernetes-$KUBERNETES_VERSION"
    mkdir -p "$work"
    # k8s.io/kubernetes points its staging modules at ./staging; replace each
    # with its published v0.N.x release so the module builds as a dependency.
    gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging_version="v0.${KUBERNETES_VERSION#v1.}"
    {
      echo "module flagops.dev/kubebin"
      echo "go 1.24"
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging/src/k8s.io/[a-z0-9-]+' "$gomod" \
        | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
    } > "$work/go.mod"
    cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
    (cd "$work" && go mod tidy >&2 && go build -trimpath -ldflags="-s -w" -o "$BIN/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager >&2)
  fi
  if [ ! -x "$BIN/etcd" ]; then
    log "building etcd $ETCD_VERSION (once)"
    work="$CACHE/src/etcd-$ETCD_VERSION"
    mkdir -p "$work"
    # etcd's own modules carry replace directives too: a wrapper main that
    # calls etcd's entry point builds it from the published modules.
    cat > "$work/go.mod" <<GOMOD
module flagops.dev/etcdbin
go 1.24
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
    cat > "$work/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "$work" && go mod tidy >&2 && go build -trimpath -ldflags="-s -w" -o "$BIN/etcd" . >&2)
  fi
fi

if [ "$with_helm" = 1 ] && ! command -v helm >/dev/null 2>&1 && [ ! -x "$CACHE/bin/helm-$HELM_VERSION/helm" ]; then
  log "building helm $HELM_VERSION (once)"
  mkdir -p "$CACHE/bin/helm-$HELM_VERSION"
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$CACHE/bin/helm-$HELM_VERSION" \
    go install -trimpath -ldflags="-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
fi

echo "$BIN"
