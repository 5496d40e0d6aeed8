#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# A kind cluster running noderoute as its DaemonSet, built and run offline,
# and the e2e suite (test/e2e, provider "kind") on it.
#
#   hack/kind-e2e.sh up     make kind-up: build what is missing, create the
#                           cluster, deploy, wait for the rollout
#   hack/kind-e2e.sh down   make kind-down: delete the cluster
#   hack/kind-e2e.sh test   make test-kind: up, the e2e suite, down
#                           (KEEP=1 keeps the cluster)
#
# What `up` does (every build is cached under _output/ and redone only when
# its inputs change):
# 1. the Docker engine: hack/docker.sh up;
# 2. kind, kubectl and the Kubernetes binaries of the node image, from the
#    module proxy at hack/versions.env's versions: hack/build-k8s-binaries.sh;
# 3. the kind node image: hack/build-kind-node-image.sh;
# 4. the noderoute image from the Dockerfile: hack/build-image.sh, tagged
#    noderoute/noderoute:e2e, the tag deploy/overlays/kind-e2e runs;
# 5. the cluster "noderoute" (hack/kind/cluster.yaml: 1 control plane, 2
#    workers, no CNI, no kube-proxy), each Node's pod CIDR set here
#    (control-plane 10.222.0.0/24, worker 10.222.1.0/24, worker2
#    10.222.2.0/24), the image loaded into the nodes, deploy/overlays/kind-e2e
#    applied, and the DaemonSet's rollout waited for (every pod Ready through
#    its own probes).
# The kubeconfig is _output/kind/kubeconfig (context kind-noderoute); nothing
# is written to ~/.kube/config.
#
# Run on the development and CI machines (2 cores, cgroup v1, no registry),
# in every CI run: docs/install.md ("Try it on kind", "What a run here
# showed") has the timings and results of those runs.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
CLUSTER=noderoute
KIND_DIR="${REPO_ROOT}/_output/kind"
KUBECONFIG_FILE="${KIND_DIR}/kubeconfig"
BIN_DIR="${REPO_ROOT}/_output/bin"
KIND="${BIN_DIR}/kind"
KUBECTL="${BIN_DIR}/kubectl"
IMAGE=noderoute/noderoute:e2e
# Pod CIDRs by node, in the order kind names the nodes.
POD_CIDRS=(
  "${CLUSTER}-control-plane=10.222.0.0/24"
  "${CLUSTER}-worker=10.222.1.0/24"
  "${CLUSTER}-worker2=10.222.2.0/24"
)
export PATH="${BIN_DIR}:${PATH}"

log() { printf '[kind-e2e] %s\n' "$*"; }
die() { printf '[kind-e2e] ERROR: %s\n' "$*" >&2; exit 1; }
step() { # NAME COMMAND...: runs a step, logs its time, dies naming it
  local name=$1 start=${SECONDS}
  shift
  log "${name}"
  "$@" || die "${name} failed; clean up with: make kind-down"
  log "${name}: done in $((SECONDS - start)) s"
}

kctl() { "${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" --context "kind-${CLUSTER}" "$@"; }

cluster_exists() { [[ -x "${KIND}" ]] && "${KIND}" get clusters 2>/dev/null | grep -qx "${CLUSTER}"; }

# Every node container of the cluster runs and the API server answers.
cluster_healthy() {
  local n running
  n="$(docker ps -a --filter "label=io.x-k8s.kind.cluster=${CLUSTER}" -q | wc -l)"
  running="$(docker ps --filter "label=io.x-k8s.kind.cluster=${CLUSTER}" -q | wc -l)"
  [[ "${n}" == 3 && "${running}" == 3 ]] && kctl get --raw /readyz >/dev/null 2>&1
}

build_tools() { hack/build-k8s-binaries.sh --kind; }

node_image() {
  NODE_IMAGE="$(hack/build-kind-node-image.sh | tail -n 1)" || return 1
  [[ -n "${NODE_IMAGE}" ]] && docker image inspect "${NODE_IMAGE}" >/dev/null
}

agent_image() {
  hack/build-image.sh && docker tag "noderoute/noderoute:${VERSION}" "${IMAGE}"
}

create_cluster() {
  mkdir -p "${KIND_DIR}"
  if ! "${KIND}" create cluster --name "${CLUSTER}" --image "${NODE_IMAGE}" \
    --config hack/kind/cluster.yaml --kubeconfig "${KUBECONFIG_FILE}" >"${KIND_DIR}/create.log" 2>&1; then
    cat "${KIND_DIR}/create.log" >&2
    "${KIND}" delete cluster --name "${CLUSTER}" --kubeconfig "${KUBECONFIG_FILE}" >/dev/null 2>&1 || true
    return 1
  fi
}

set_pod_cidrs() {
  local entry node cidr
  for entry in "${POD_CIDRS[@]}"; do
    node=${entry%%=*} cidr=${entry#*=}
    kctl patch node "${node}" --type=merge -p "{\"spec\":{\"podCIDR\":\"${cidr}\",\"podCIDRs\":[\"${cidr}\"]}}" >/dev/null || return 1
    log "  ${node}: ${cidr}"
  done
}

# Packets to the Service CIDR would leave the machine through Docker's
# network (this cluster has no kube-proxy to answer for it): a oneshot
# systemd unit in every node blackholes the range at each boot of the node
# container, before containerd and the kubelet start.
SERVICE_CIDR="$(awk '$1 == "serviceSubnet:" { print $2 }' hack/kind/cluster.yaml)"
guard_service_cidr() {
  [[ -n "${SERVICE_CIDR}" ]] || { echo "no serviceSubnet in hack/kind/cluster.yaml" >&2; return 1; }
  local node
  for node in $("${KIND}" get nodes --name "${CLUSTER}"); do
    docker exec -i "${node}" sh -c 'cat >/etc/systemd/system/service-cidr-blackhole.service &&
      systemctl daemon-reload && systemctl enable --now service-cidr-blackhole.service' <<UNIT || return 1
[Unit]
Description=Blackhole the Service CIDR ${SERVICE_CIDR} (no kube-proxy in this cluster; hack/kind-e2e.sh)
DefaultDependencies=no
Before=containerd.service kubelet.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip route replace blackhole ${SERVICE_CIDR}'
[Install]
WantedBy=multi-user.target
UNIT
    docker exec "${node}" ip route show type blackhole | grep -q "^blackhole ${SERVICE_CIDR}" ||
      { echo "${node}: no blackhole route for ${SERVICE_CIDR}" >&2; return 1; }
  done
}

load_image() { "${KIND}" load docker-image "${IMAGE}" --name "${CLUSTER}" >"${KIND_DIR}/load.log" 2>&1 || { cat "${KIND_DIR}/load.log" >&2; return 1; }; }

deploy() {
  kctl apply -k deploy/overlays/kind-e2e >/dev/null &&
    kctl -n kube-system rollout status ds/noderoute-agent --timeout=5m
}

up() {
  if cluster_exists; then
    cluster_healthy || die "a kind cluster named ${CLUSTER} exists but is not healthy (stopped nodes or no API server; left by an earlier run?): make kind-down, then make kind-up"
    log "cluster ${CLUSTER} is up already: nothing to do (make kind-down first to make it anew)"
    usage_note
    return 0
  fi
  local total=${SECONDS}
  VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}
  export VERSION
  step "Docker engine" hack/docker.sh up
  local clash
  clash="$(docker ps -a --format '{{.Names}}' | grep -E "^${CLUSTER}-(control-plane|worker|worker2)$" | paste -sd ' ' || true)"
  [[ -z "${clash}" ]] ||
    die "containers with the node names exist but are not a kind cluster (not made by kind-up, so left alone): ${clash}; remove them (docker rm -f ${clash}) and run make kind-up again"
  step "kind, kubectl and the node image's binaries (hack/build-k8s-binaries.sh)" build_tools
  step "kind node image (hack/build-kind-node-image.sh)" node_image
  step "noderoute image (hack/build-image.sh) as ${IMAGE}" agent_image
  step "kind create cluster ${CLUSTER} (${NODE_IMAGE})" create_cluster
  # From here on a failure deletes the cluster again (KEEP=1 keeps it to
  # look at), so that no half-made cluster is left running.
  trap 'on_up_exit $?' EXIT
  step "blackhole the Service CIDR ${SERVICE_CIDR} in every node" guard_service_cidr
  step "pod CIDRs" set_pod_cidrs
  step "kind load docker-image ${IMAGE}" load_image
  step "kubectl apply -k deploy/overlays/kind-e2e, rollout" deploy
  trap - EXIT
  log "cluster ${CLUSTER} up in $((SECONDS - total)) s"
  usage_note
}

on_up_exit() { # STATUS
  [[ "$1" != 0 ]] || return 0
  if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: the half-made cluster ${CLUSTER} is left to look at (kubeconfig ${KUBECONFIG_FILE#"${REPO_ROOT}/"}); make kind-down removes it"
  else
    log "kind-up failed: deleting the cluster again (KEEP=1 keeps it)"
    down
  fi
}

usage_note() {
  cat <<EOF
[kind-e2e] Use it:
  export KUBECONFIG=${KUBECONFIG_FILE#"${REPO_ROOT}/"}   # context kind-${CLUSTER}
  _output/bin/kubectl -n kube-system get pods -o wide
  _output/bin/kubectl -n kube-system exec ds/noderoute-agent -- agentctl flows --table 20 --no-stats
  docker exec ${CLUSTER}-worker ip route
[kind-e2e] Tear down: make kind-down
EOF
}

down() {
  local start=${SECONDS}
  if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers: no kind cluster to delete"
    return 0
  fi
  if [[ -x "${KIND}" ]]; then
    "${KIND}" delete cluster --name "${CLUSTER}" --kubeconfig "${KUBECONFIG_FILE}" 2>&1 | sed 's/^/[kind-e2e]   /'
  fi
  # Anything of the cluster kind did not remove (a kind binary missing, a
  # half-made cluster).
  local left
  left="$(docker ps -aq --filter "label=io.x-k8s.kind.cluster=${CLUSTER}")"
  if [[ -n "${left}" ]]; then
    log "removing the cluster's left-over containers"
    # shellcheck disable=SC2086
    docker rm -f -v ${left} >/dev/null
  fi
  # kind's network is shared by every kind cluster: removed only when no
  # container uses it any more.
  if docker network inspect kind >/dev/null 2>&1 &&
    [[ "$(docker network inspect kind -f '{{len .Containers}}')" == 0 ]]; then
    docker network rm kind >/dev/null && log "removed the unused docker network kind"
  fi
  rm -f "${KUBECONFIG_FILE}"
  log "cluster ${CLUSTER} deleted in $((SECONDS - start)) s"
}

run_tests() {
  local start=${SECONDS} status=0
  log "e2e suite on kind (go test -tags e2e ./test/e2e -provider=kind)"
  KIND_CLUSTER_NAME="${CLUSTER}" KUBECONFIG="${KUBECONFIG_FILE}" \
    go test -count=1 -tags e2e -timeout 30m -v ./test/e2e/ -args -provider=kind || status=$?
  log "e2e suite on kind: exit ${status} after $((SECONDS - start)) s"
  return "${status}"
}

test_kind() {
  local status=0
  up
  run_tests || status=$?
  if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: cluster ${CLUSTER} left up"
    usage_note
  else
    down
  fi
  return "${status}"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  test) test_kind ;;
  *) echo "usage: $(basename "$0") up|down|test" >&2; exit 2 ;;
esac
