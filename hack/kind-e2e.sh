#!/usr/bin/env bash
# Runs the e2e suite (test/e2e, provider "kind") on a kind cluster.
#
# What was and was not run: this script and test/e2e/kind_provider.go have
# NOT been run on the project's development and CI machines, which have no
# Docker engine. They follow kind's documentation (cluster config,
# `kind load docker-image`, node containers named <cluster>-control-plane,
# <cluster>-worker, ...). The same test cases run in CI on the local
# provider (hack/local-cluster.sh).
#
# Choices:
# - the default CNI (kindnet) is disabled: kindnet installs its own routes
#   to every node's pod CIDR, which would collide with ours (the agent never
#   overwrites a route it does not own). The agent's pods use hostNetwork
#   and tolerate every taint, so they run although nodes stay NotReady
#   without a CNI; nothing else in the suite needs pod networking.
# - the manifests are deploy/overlays/kind-e2e (checked by test/deploy):
#   the userspace datapath of deploy/overlays/netdev (kind nodes usually lack
#   the openvswitch kernel module; /dev/net/tun is mounted for it), the image
#   built here, and NET_RAW for the agent container, where the suite pings.
#
# Usage: hack/kind-e2e.sh [--keep]   (needs docker, kind, kubectl, go)
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${KIND_CLUSTER_NAME:-noderoute-e2e}
IMAGE=noderoute/noderoute:e2e
KEEP=false
[ "${1:-}" = "--keep" ] && KEEP=true

for tool in docker kind kubectl go; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool not found" >&2; exit 1; }
done

cleanup() { $KEEP || kind delete cluster --name "$CLUSTER"; }
trap cleanup EXIT

cat <<YAML | kind create cluster --name "$CLUSTER" --config=-
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
  podSubnet: 10.222.0.0/16
nodes:
  - role: control-plane
  - role: worker
  - role: worker
YAML

docker build -t "$IMAGE" --build-arg VERSION="$(git describe --tags --always --dirty)" \
  --build-arg COMMIT="$(git rev-parse --short HEAD)" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# The overlay sets the image to $IMAGE.
kubectl --context "kind-$CLUSTER" apply -k deploy/overlays/kind-e2e
kubectl --context "kind-$CLUSTER" -n kube-system rollout status ds/noderoute-agent --timeout=5m

KIND_CLUSTER_NAME=$CLUSTER go test -count=1 -tags e2e -timeout 30m ./test/e2e/ -args -provider=kind
