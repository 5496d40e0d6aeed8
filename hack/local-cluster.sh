#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# A local noderoute "cluster" made of network namespaces on this machine:
#
#   <name>-net      a Linux bridge (the underlay, <underlay>.1/24), etcd and
#                   kube-apiserver (https://<underlay>.1:6443)
#   <name>-<node>   one per node (master, worker1, worker2, ...): a veth to the
#                   underlay (<underlay>.200+i), its own ovsdb-server and
#                   userspace ovs-vswitchd, and one noderoute-agent
#
# Nothing but the namespaces themselves is added to the root namespace. All
# files live in _output/clusters/<name>/. See docs/local-cluster.md.
#
# The Go half, hack/tools/localcluster (built into _output/tools/), holds
# the layout of those files (its 'paths' command prints them for eval), the
# control plane (credentials, etcd, kube-apiserver) and each node's OVS;
# this script keeps the command line, namespaces and links, agents and
# Kubernetes objects.
#
# Run `hack/local-cluster.sh help` for the commands.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/local-cluster-util.sh
source "${SCRIPT_DIR}/lib/local-cluster-util.sh"

K8S_BIN_DIR="${REPO_ROOT}/_output/bin"
KUBECTL="${K8S_BIN_DIR}/kubectl"
LC_TOOL="${REPO_ROOT}/_output/tools/localcluster"
BUILD_LOG="${REPO_ROOT}/_output/local-cluster-build.log"
UNDERLAY_BRIDGE="br-underlay"
NODE_UPLINK="eth0"
MAX_NODES=50

# Settings: flags win over these environment variables.
NAME="${NRT_CLUSTER_NAME:-nrt}"
NODES="${NRT_NODES:-3}"
UNDERLAY="${NRT_UNDERLAY:-}"
POD_CIDR_BASE="${NRT_POD_CIDR_BASE:-10.222}"
IP_FAMILY="${NRT_IP_FAMILY:-ipv4}"
CONVERGE_TIMEOUT="${NRT_CONVERGE_TIMEOUT:-120}"
AGENT_VERBOSITY="${NRT_AGENT_V:-2}"
TOKEN_DURATION="${NRT_TOKEN_DURATION:-8760h}"
# Capabilities agents start with: empty (the default) runs them as root with
# every capability, as before; otherwise see agent_launcher.
AGENT_CAPS="${NRT_AGENT_CAPS:-}"
RECREATE=0

usage() {
  cat <<EOF
Usage: hack/local-cluster.sh [--name NAME] COMMAND [ARGS...]

A noderoute cluster made of network namespaces on this machine (root only).

Commands:
  up [--name NAME] [--nodes N] [--underlay A.B.C.0/24] [--pod-cidr-base A.B]
     [--ipv6 | --dual-stack] [--timeout SECONDS] [--recreate]
        Create the cluster and wait until every agent has converged. If it is
        already up and healthy: says so and exits 0 (--recreate: tear it down
        and create it again). Leftovers of a broken cluster are removed first.
  down [--name NAME]
        Remove every process, namespace and file of the cluster. Idempotent;
        works after a crash of 'up' halfway.
  status [--name NAME]
        API server health; per node: agent, OVS, pod CIDR(s), responder flows
        (ARP in table 20, NDP in table 21).
  exec NODE -- CMD [ARGS...]
        Run CMD in NODE's namespace with OVS_RUNDIR set to its OVS (so
        'ovs-vsctl show', 'ovs-ofctl dump-flows br-int table=20' work) and
        bin/ first in PATH. NODE 'net' is the underlay/control-plane namespace.
  kubectl ARGS...
        kubectl as cluster admin (runs inside <name>-net).
  restart-agent NODE [--kill] [--caps CAPS]
        SIGTERM (--kill: SIGKILL) NODE's agent and start it again, with the
        current bin/noderoute-agent (run 'make build' first to pick up changes).
        --caps: start it with only these capabilities (e.g. net_admin, or
        none), as root, through setpriv (see NRT_AGENT_CAPS).
  stop-agent NODE
        SIGTERM NODE's agent and leave it stopped (e.g. before
        'exec NODE -- noderoute-agent cleanup'); restart-agent starts it again.
  logs NODE [-f] [-n LINES]
        Tail NODE's agent log (default 100 lines; -f follows).
  stop-api / start-api [--etcd-only]
        Stop kube-apiserver and etcd (the agents keep running) / start them
        again with the same data and credentials, and wait until ready.
        --etcd-only starts etcd alone (the API server stays down) and waits
        until it answers on http://127.0.0.1:2379 in <name>-net.

exec and kubectl take --name before their arguments ('exec --name X NODE --
CMD', 'kubectl --name X -- get nodes'); a '--' ends the script's options.

Options (and environment variables):
  --name NAME          cluster name, [a-z][a-z0-9-]* up to 20 chars (NRT_CLUSTER_NAME, default nrt)
  --nodes N            number of nodes, 1..${MAX_NODES}: master, worker1, ... (NRT_NODES, default 3)
  --underlay CIDR      underlay /24 (NRT_UNDERLAY; default 10.79.1.0/24 for 'nrt', else
                       10.79.X.0/24 with X derived from the name, see docs/local-cluster.md)
  --pod-cidr-base A.B  node i gets pod CIDR A.B.i.0/24 (NRT_POD_CIDR_BASE, default 10.222)
  --ipv6               single-stack IPv6 pod CIDRs: node i gets fd00:A:B:i::/64
                       (fd00:10:222:i::/64 by default; A, B and i written as they are
                       in decimal); the underlay stays IPv4 (NRT_IP_FAMILY=ipv6)
  --dual-stack         both: A.B.i.0/24 and fd00:A:B:i::/64, IPv4 first (NRT_IP_FAMILY=dual)
  --ipv4               IPv4 only, the default (NRT_IP_FAMILY=ipv4)
  --timeout SECONDS    bound on waiting for convergence (NRT_CONVERGE_TIMEOUT, default 120)
  NRT_AGENT_V          agent -v level (default 2)
  NRT_AGENT_CAPS       capabilities agents start with (up, restart-agent): empty (default)
  NRT_AGENT_ARGS       extra agent flags, split on spaces (e.g. --flow-check-period=0)
                       as root with all of them; otherwise a comma-separated list such as
                       net_admin (or none): root, that bounding set, no inheritable or
                       ambient capabilities, no_new_privs (setpriv)
EOF
}

# ---------------------------------------------------------------------------
# Names and addresses, all derived from NAME (and the settings above).

# derive: the cluster's paths (OUT_DIR, STATE_FILE, NET_NS, ... and per-node
# templates *_T, see node_path) from the tool, which defines the layout.
derive() {
  [[ "${NAME}" =~ ^[a-z][a-z0-9-]{0,19}$ ]] ||
    die "invalid cluster name '${NAME}': want [a-z][a-z0-9-]*, at most 20 characters"
  local vars
  vars="$(lc_tool paths)" || exit 1
  eval "${vars}"
}

# lc_tool CMD ARGS...: hack/tools/localcluster for this cluster (built if
# missing; 'up' rebuilds it). lc_tool_in NETNS CMD ARGS...: inside NETNS.
lc_tool() { ensure_tool; "${LC_TOOL}" "$1" --root "${REPO_ROOT}" --name "${NAME}" "${@:2}"; }
lc_tool_in() { ensure_tool; ip netns exec "$1" "${LC_TOOL}" "$2" --root "${REPO_ROOT}" --name "${NAME}" "${@:3}"; }
ensure_tool() { [[ -x "${LC_TOOL}" ]] || with_build_lock build_tool; }
# Straight to LC_TOOL: go build then relinks only if the sources changed.
build_tool() {
  mkdir -p "$(dirname "${LC_TOOL}")"
  (cd "${REPO_ROOT}" && go build -o "${LC_TOOL}" ./hack/tools/localcluster) >>"${BUILD_LOG}" 2>&1 ||
    { tail -n 30 "${BUILD_LOG}" >&2; die "go build ./hack/tools/localcluster failed"; }
}
# Serialise builds: two 'up's at once would otherwise both write bin/.
with_build_lock() {
  mkdir -p "${REPO_ROOT}/_output"
  (
    flock 9
    "$@"
  ) 9>"${REPO_ROOT}/_output/.local-cluster-build.lock"
}

# Default underlay: 10.79.1.0/24 for 'nrt'; 10.79.X.0/24 for other names,
# X = 2 + (cksum(name) mod 253). Two clusters never share a link (each has its
# own bridge in its own namespace), so even a collision would be harmless; the
# distinct subnets only make outputs of different clusters easy to tell apart.
default_underlay() {
  if [[ "${NAME}" == nrt ]]; then
    echo "10.79.1.0/24"
  else
    local sum
    sum="$(printf '%s' "${NAME}" | cksum | cut -d' ' -f1)"
    echo "10.79.$((2 + sum % 253)).0/24"
  fi
}

derive_addresses() {
  [[ -n "${UNDERLAY}" ]] || UNDERLAY="$(default_underlay)"
  [[ "${UNDERLAY}" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.0/24$ ]] ||
    die "underlay '${UNDERLAY}' must be an IPv4 /24 written A.B.C.0/24"
  local o
  for o in "${BASH_REMATCH[@]:1:3}"; do ((o <= 255)) || die "underlay '${UNDERLAY}': octet ${o} > 255"; done
  UNDERLAY_PREFIX="${UNDERLAY%.0/24}"
  API_IP="${UNDERLAY_PREFIX}.1"
  API_URL="https://${API_IP}:${APISERVER_PORT}" # APISERVER_PORT: from derive
  POD_CIDR_BASE="${POD_CIDR_BASE%.0.0/16}"
  [[ "${POD_CIDR_BASE}" =~ ^([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
    die "pod CIDR base '${POD_CIDR_BASE}' must be A.B (or A.B.0.0/16)"
  for o in "${BASH_REMATCH[@]:1:2}"; do ((o <= 255)) || die "pod CIDR base '${POD_CIDR_BASE}': octet ${o} > 255"; done
  case "${IP_FAMILY}" in
    ipv4|ipv6|dual) ;;
    *) die "IP family '${IP_FAMILY}' must be ipv4, ipv6 or dual (--ipv4, --ipv6, --dual-stack)" ;;
  esac
  if ! [[ "${NODES}" =~ ^[0-9]+$ ]] || ((NODES < 1 || NODES > MAX_NODES)); then
    die "--nodes must be 1..${MAX_NODES}, got '${NODES}'"
  fi
}

node_name() { if (($1 == 0)); then echo master; else echo "worker$1"; fi; }
node_index() { # NODE -> i, or fails
  case "$1" in
    master) echo 0 ;;
    worker[1-9]|worker[1-9][0-9]) echo "${1#worker}" ;;
    *) return 1 ;;
  esac
}
# node_path TEMPLATE NODE: a per-node path (or name) of derive's templates.
node_path() { echo "${1//@NODE@/$2}"; }
node_ns() { node_path "${NODE_NS_T}" "$1"; }
node_ip() { echo "${UNDERLAY_PREFIX}.$((200 + $1))"; }
node_pod_cidr() { echo "${POD_CIDR_BASE}.$1.0/24"; }
# IPv6 pod CIDR of node i: fd00:A:B:i::/64 for pod CIDR base A.B, the decimal
# digits used as hex groups (10.222 -> fd00:10:222:i::/64), so that the two
# families of one node read alike. Written canonically (RFC 5952, as the API
# server wants it): trailing zero groups join the '::' (node 0 of 10.222 is
# fd00:10:222::/64).
node_pod_cidr6() {
  local -a groups=(fd00 "$((10#${POD_CIDR_BASE%.*}))" "$((10#${POD_CIDR_BASE#*.}))")
  if [[ "$1" == '<i>' ]]; then
    groups+=("$1")
  else
    groups+=("$((10#$1))")
    while [[ "${groups[-1]}" == 0 ]]; do unset 'groups[-1]'; done
  fi
  local IFS=:
  echo "${groups[*]}::/64"
}
# Pod CIDRs of node i for the cluster's IP family, space-separated, IPv4
# first (Kubernetes lists the primary family first).
node_pod_cidrs() {
  case "${IP_FAMILY}" in
    ipv4) node_pod_cidr "$1" ;;
    ipv6) node_pod_cidr6 "$1" ;;
    dual) echo "$(node_pod_cidr "$1") $(node_pod_cidr6 "$1")" ;;
  esac
}
family_count() { if [[ "${IP_FAMILY}" == dual ]]; then echo 2; else echo 1; fi; }
pod_cidrs_text() { # how 'up' describes the pod CIDRs
  case "${IP_FAMILY}" in
    ipv4) echo "${POD_CIDR_BASE}.<i>.0/24" ;;
    ipv6) node_pod_cidr6 '<i>' ;;
    dual) echo "${POD_CIDR_BASE}.<i>.0/24 + $(node_pod_cidr6 '<i>')" ;;
  esac
}
node_ovs_dir() { node_path "${OVS_DIR_T}" "$1"; }
# The underlay side of node i's veth, inside <name>-net (interface names are
# per namespace, so this needs no cluster prefix; max "veth-worker50").
node_veth() { echo "veth-$1"; }

# Namespaces this cluster may have created: exactly <name>-net and
# <name>-{master,workerN}. (A prefix match would also catch other clusters'
# and the integration tests' nrt-<hex> namespaces.)
cluster_netns_list() {
  local re="^${NAME//-/\\-}-(net|master|worker[0-9]+)\$"
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "${re}" || true
}

load_state() {
  [[ -f "${STATE_FILE}" ]] || die "cluster '${NAME}' is not up (no ${STATE_FILE#"${REPO_ROOT}/"}); run: hack/local-cluster.sh up --name ${NAME}"
  # shellcheck disable=SC1090
  source "${STATE_FILE}"
  NODES="${STATE_NODES}" UNDERLAY="${STATE_UNDERLAY}" POD_CIDR_BASE="${STATE_POD_CIDR_BASE}"
  # Clusters made before IPv6 support have no STATE_IP_FAMILY: IPv4.
  IP_FAMILY="${STATE_IP_FAMILY:-ipv4}"
  derive_addresses
}

require_node() { # NODE: must be a node of the loaded cluster
  local i
  if ! i="$(node_index "$1")" || ((i >= NODES)); then
    die "no node '$1' in cluster '${NAME}' (nodes: $(for ((j = 0; j < NODES; j++)); do printf '%s ' "$(node_name "$j")"; done))"
  fi
}

# ---------------------------------------------------------------------------
# Commands that run things inside the namespaces.

kubectl_admin() { ip netns exec "${NET_NS}" "${KUBECTL}" --kubeconfig "${ADMIN_KUBECONFIG}" "$@"; }
kubectl_agent() { ip netns exec "${NET_NS}" "${KUBECTL}" --kubeconfig "${AGENT_KUBECONFIG}" "$@"; }

in_node() { # NODE CMD...: with the node's OVS environment
  local node=$1 ovs
  shift
  ovs="$(node_ovs_dir "${node}")"
  ip netns exec "$(node_ns "${node}")" env \
    OVS_RUNDIR="${ovs}" OVS_DBDIR="${ovs}" OVS_LOGDIR="${ovs}" OVS_SYSCONFDIR="${ovs}" \
    PATH="${REPO_ROOT}/bin:${PATH}" "$@"
}

remote_flow_count() { # NODE -> number of responder flows (priority=200 in tables 20 and 21; 0 if unreachable)
  local out
  # One ARP responder (table 20) per remote IPv4 pod CIDR, one NDP
  # responder (table 21) per remote IPv6 one. Table 22's priority-200 flow
  # is a base flow and not counted.
  out="$(in_node "$1" ovs-ofctl --timeout=5 dump-flows br-int 2>/dev/null)" || { echo 0; return; }
  grep -cE 'table=2[01], .*priority=200,' <<<"${out}" || true
}

# ---------------------------------------------------------------------------
# Prerequisites.

ensure_packages() {
  local -a missing=()
  local pkg
  for pkg in openvswitch-switch iproute2 iputils-ping; do
    [[ "$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("${pkg}")
  done
  if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The dedicated OVS of each node must not be confused with a system one:
  # we never use /var/run/openvswitch, so a running system OVS is harmless.
}

build_binaries() {
  with_build_lock build_all
  local b
  for b in etcd kube-apiserver kubectl; do
    [[ -x "${K8S_BIN_DIR}/${b}" ]] || die "${K8S_BIN_DIR}/${b} missing after hack/build-k8s-binaries.sh"
  done
}

build_all() {
  log "make build"
  make -C "${REPO_ROOT}" --no-print-directory build >"${BUILD_LOG}" 2>&1 ||
    { cat "${BUILD_LOG}" >&2; die "make build failed"; }
  build_tool # (the tool's layout must be the sources')
  log "hack/build-k8s-binaries.sh (skips what is built)"
  "${REPO_ROOT}/hack/build-k8s-binaries.sh" >>"${BUILD_LOG}" 2>&1 ||
    { tail -n 30 "${BUILD_LOG}" >&2; die "hack/build-k8s-binaries.sh failed"; }
}

# Agents run a copy of bin/noderoute-agent, replaced by rename: 'make build'
# can then rewrite bin/ while agents run, and restart-agent picks it up.
install_agent_binary() {
  mkdir -p "$(dirname "${AGENT_BIN}")"
  cp "${REPO_ROOT}/bin/noderoute-agent" "${AGENT_BIN}.tmp.$$"
  mv -f "${AGENT_BIN}.tmp.$$" "${AGENT_BIN}"
}

# ---------------------------------------------------------------------------
# PKI and kubeconfigs (test/framework/localapi's, through the tool): a CA and
# a serving certificate for the underlay address, the ServiceAccount key
# pair, a static admin token and admin.kubeconfig.

make_pki() { lc_tool pki --api-ip "${API_IP}"; }

write_kubeconfig() { # PATH USER TOKEN
  printf '%s' "$3" | lc_tool kubeconfig --api-ip "${API_IP}" --user "$2" --out "$1"
}

# ---------------------------------------------------------------------------
# Underlay and control plane.

create_underlay() {
  ip netns add "${NET_NS}"
  ip -n "${NET_NS}" link set lo up
  ip -n "${NET_NS}" link add "${UNDERLAY_BRIDGE}" type bridge
  ip -n "${NET_NS}" addr add "${API_IP}/24" dev "${UNDERLAY_BRIDGE}"
  ip -n "${NET_NS}" link set "${UNDERLAY_BRIDGE}" up
}

start_control_plane() {
  start_etcd
  start_apiserver
}

# etcd and kube-apiserver run inside <name>-net, detached, with the flags
# test/framework/localapi uses; the tool starts them and waits for them.
start_etcd() { lc_tool_in "${NET_NS}" start --api-ip "${API_IP}" --bin-dir "${K8S_BIN_DIR}" etcd; }
start_apiserver() { lc_tool_in "${NET_NS}" start --api-ip "${API_IP}" --bin-dir "${K8S_BIN_DIR}" kube-apiserver; }
# wait_etcd: until etcd answers /health; wait_apiserver: until /readyz is ok
# and kube-system exists (made by a post-start hook /readyz does not wait for).
wait_etcd() { lc_tool_in "${NET_NS}" wait --api-ip "${API_IP}" etcd; }
wait_apiserver() { lc_tool_in "${NET_NS}" wait --api-ip "${API_IP}" kube-apiserver; }

# RBAC objects of deploy/noderoute-agent.yaml (ServiceAccount, ClusterRole,
# ClusterRoleBinding; not the DaemonSet), then a TokenRequest token.
setup_agent_identity() {
  awk 'BEGIN { RS = "\n---\n" } /\nkind: (ServiceAccount|ClusterRole|ClusterRoleBinding)\n/ { printf "---\n%s\n", $0 }' \
    "${REPO_ROOT}/deploy/noderoute-agent.yaml" >"${AGENT_RBAC}"
  [[ "$(grep -c '^kind:' "${AGENT_RBAC}")" == 3 ]] ||
    die "expected 3 RBAC objects in deploy/noderoute-agent.yaml, got: $(grep '^kind:' "${AGENT_RBAC}" | tr '\n' ' ')"
  kubectl_admin apply -f "${AGENT_RBAC}" >/dev/null
  local token="" deadline=$((SECONDS + 30))
  until token="$(kubectl_admin -n kube-system create token noderoute-agent --duration="${TOKEN_DURATION}" 2>&1)"; do
    ((SECONDS < deadline)) || die "kubectl create token failed: ${token}"
    sleep 0.2
  done
  write_kubeconfig "${AGENT_KUBECONFIG}" noderoute-agent "${token}"
  # RBAC is served from an informer cache: wait until the binding applies.
  until [[ "$(kubectl_agent auth can-i watch nodes 2>/dev/null)" == yes ]]; do
    ((SECONDS < deadline)) || die "the noderoute-agent ServiceAccount still cannot watch nodes"
    sleep 0.2
  done
}

create_node_objects() {
  local i node manifest="${NODES_MANIFEST}" cidrs
  : >"${manifest}"
  for ((i = 0; i < NODES; i++)); do
    node="$(node_name "${i}")"
    read -ra cidrs <<<"$(node_pod_cidrs "${i}")"
    cat >>"${manifest}" <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: ${node}
  labels:
    kubernetes.io/hostname: ${node}
    noderoute.io/local-cluster: ${NAME}
spec:
  podCIDR: ${cidrs[0]}
  podCIDRs: [$(printf '"%s",' "${cidrs[@]}" | sed 's/,$//')]
EOF
  done
  kubectl_admin apply -f "${manifest}" >/dev/null
  for ((i = 0; i < NODES; i++)); do
    node="$(node_name "${i}")"
    kubectl_admin patch node "${node}" --subresource=status --type=merge -p \
      "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$(node_ip "${i}")\"},{\"type\":\"Hostname\",\"address\":\"${node}\"}]}}" >/dev/null
  done
}

# ---------------------------------------------------------------------------
# Nodes: namespace, uplink, OVS, agent.

create_node_netns() { # i
  local i=$1 node ns
  node="$(node_name "${i}")"
  ns="$(node_ns "${node}")"
  ip netns add "${ns}"
  ip -n "${ns}" link set lo up
  # Both ends are created directly in their namespaces: nothing in the root one.
  ip -n "${NET_NS}" link add "$(node_veth "${node}")" type veth peer name "${NODE_UPLINK}" netns "${ns}"
  ip -n "${NET_NS}" link set "$(node_veth "${node}")" master "${UNDERLAY_BRIDGE}" up
  ip -n "${ns}" addr add "$(node_ip "${i}")/24" dev "${NODE_UPLINK}"
  ip -n "${ns}" link set "${NODE_UPLINK}" up
}

# One ovsdb-server and one userspace ovs-vswitchd per node, both inside the
# node's namespace (so the bridge's tap devices, antrea-gw0 included, appear
# there), with their own run dir: pkg/ovs/ovsdaemon's, through the tool.
start_node_ovs() { lc_tool_in "$(node_ns "$1")" ovs-start --node "$1"; }

# agent_launcher: the words that go before the agent's command line. With
# AGENT_CAPS set, setpriv confines the agent the way the DaemonSet's
# securityContext does (capabilities drop ALL + add, allowPrivilegeEscalation
# false): still UID 0, bounding set = AGENT_CAPS, inheritable and ambient
# sets empty, no_new_privs. For UID 0 the kernel then gives the agent
# exactly the bounding set as permitted and effective capabilities.
agent_launcher() {
  LAUNCHER=()
  [[ -n "${AGENT_CAPS}" ]] || return 0
  local set="-all" c
  if [[ "${AGENT_CAPS}" != none ]]; then
    local -a list
    IFS=, read -ra list <<<"${AGENT_CAPS}"
    for c in "${list[@]}"; do
      c="${c,,}"
      c="${c#cap_}"
      [[ "${c}" =~ ^[a-z_]+$ ]] || die "capability '${c}' in '${AGENT_CAPS}': want names like net_admin, comma-separated, or none"
      set+=",+${c}"
    done
  fi
  command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is needed to start agents with capabilities '${AGENT_CAPS}'"
  LAUNCHER=(setpriv "--bounding-set=${set}" --inh-caps=-all --ambient-caps=-all --no-new-privs --)
}

start_agent() { # NODE
  local node=$1 ovs
  ovs="$(node_ovs_dir "${node}")"
  agent_launcher
  local -a extra=()
  # The local API socket is a file, shared by every namespace: one per node.
  # (Metrics listen on 127.0.0.1:9475, which is per network namespace.)
  local help
  help="$("${AGENT_BIN}" --help 2>&1 || true)"
  if [[ "${help}" == *-api-socket* ]]; then
    extra+=(--api-socket="$(node_path "${AGENT_SOCK_T}" "${node}")")
  fi
  start_daemon "noderoute-agent(${node})" "$(node_path "${AGENT_PID_T}" "${node}")" "$(node_path "${AGENT_LOG_T}" "${node}")" "$(node_ns "${node}")" \
    "${LAUNCHER[@]}" "${AGENT_BIN}" "${extra[@]}" \
    --node-name="${node}" \
    --kubeconfig="${AGENT_KUBECONFIG}" \
    --ovs-rundir="${ovs}" \
    --ovs-datapath-type=netdev \
    --ovs-bridge=br-int \
    --gateway-interface=antrea-gw0 \
    -v="${AGENT_VERBOSITY}" ${NRT_AGENT_ARGS:-}
}

stop_agent() { # NODE SIGNAL
  local pidfile pid
  pidfile="$(node_path "${AGENT_PID_T}" "$1")"
  pid="$(read_pid "${pidfile}")"
  if pid_alive "${pid}" && pid_is_ours "${pid}"; then
    log "stopping agent of $1 (pid ${pid}, SIG$2)"
    kill "-$2" "${pid}" 2>/dev/null || true
    wait_gone 15 "${pid}" || { kill -KILL "${pid}" 2>/dev/null || true; wait_gone 5 "${pid}" || die "agent ${pid} does not exit"; }
  fi
  rm -f "${pidfile}"
}

# Waits until every node has one responder per remote pod CIDR: an ARP
# responder (table 20, priority=200) per IPv4 one, an NDP responder (table
# 21, priority=200) per IPv6 one, so (nodes - 1) x (number of families);
# fails early if an agent dies.
wait_converged() {
  local want=$(((NODES - 1) * $(family_count))) deadline=$((SECONDS + CONVERGE_TIMEOUT)) i node pending log_file
  while :; do
    pending=()
    for ((i = 0; i < NODES; i++)); do
      node="$(node_name "${i}")"
      log_file="$(node_path "${AGENT_LOG_T}" "${node}")"
      pid_alive "$(read_pid "$(node_path "${AGENT_PID_T}" "${node}")")" ||
        die "agent of ${node} exited; tail of ${log_file#"${REPO_ROOT}/"}:
$(tail -n 30 "${log_file}")"
      [[ "$(remote_flow_count "${node}")" == "${want}" ]] || pending+=("${node}")
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      for node in "${pending[@]}"; do
        printf '%s: %s/%s remote ARP/NDP responder flows in tables 20 and 21; tail of agent.log:\n' "${node}" "$(remote_flow_count "${node}")" "${want}" >&2
        tail -n 20 "$(node_path "${AGENT_LOG_T}" "${node}")" >&2
        printf '%s: tail of ovs/ovs-vswitchd.log:\n' "${node}" >&2
        tail -n 5 "$(node_path "${VSWITCHD_LOG_T}" "${node}")" >&2
      done
      die "not converged after ${CONVERGE_TIMEOUT}s: ${pending[*]} (cluster left up for inspection; 'hack/local-cluster.sh down --name ${NAME}' removes it)"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------
# up / down / status

cluster_healthy() { # quiet check: state file, namespaces, every process alive
  [[ -f "${STATE_FILE}" ]] || return 1
  (
    load_state
    [[ -e "/var/run/netns/${NET_NS}" ]] || exit 1
    for f in "${ETCD_PID}" "${APISERVER_PID}"; do pid_alive "$(read_pid "${f}")" || exit 1; done
    for ((i = 0; i < NODES; i++)); do
      node="$(node_name "${i}")"
      for f in "${AGENT_PID_T}" "${OVSDB_PID_T}" "${VSWITCHD_PID_T}"; do
        pid_alive "$(read_pid "$(node_path "${f}" "${node}")")" || exit 1
      done
    done
  )
}

cmd_up() {
  require_root
  derive
  derive_addresses
  agent_launcher # checks NRT_AGENT_CAPS before anything is made
  local t0=${SECONDS} start_ns
  start_ns="$(date +%s%N)"
  if cluster_healthy; then
    if ((RECREATE)); then
      log "cluster '${NAME}' is up; --recreate: tearing it down first"
      cmd_down
    else
      local have
      # shellcheck disable=SC1090
      have="$(source "${STATE_FILE}" && echo "${STATE_NODES} ${STATE_UNDERLAY} ${STATE_POD_CIDR_BASE} ${STATE_IP_FAMILY:-ipv4}")"
      if [[ "${have}" != "${NODES} ${UNDERLAY} ${POD_CIDR_BASE} ${IP_FAMILY}" ]]; then
        die "cluster '${NAME}' is already up with nodes/underlay/pod-CIDR-base/IP-family '${have}', not '${NODES} ${UNDERLAY} ${POD_CIDR_BASE} ${IP_FAMILY}'; use --recreate (or down first)"
      fi
      log "cluster '${NAME}' is already up (${NODES} nodes, underlay ${UNDERLAY}); nothing to do ('--recreate' to start afresh)"
      return 0
    fi
  elif [[ -e "${OUT_DIR}" || -n "$(cluster_netns_list)" ]]; then
    log "found leftovers of cluster '${NAME}' (not healthy): removing them first"
    cmd_down
  fi

  ensure_packages
  build_binaries
  log "binaries ready ($((SECONDS - t0))s)"
  log "creating cluster '${NAME}': ${NODES} node(s), underlay ${UNDERLAY}, API ${API_URL}, pod CIDRs $(pod_cidrs_text)"
  mkdir -p "${OUT_DIR}"
  install_agent_binary
  make_pki
  create_underlay
  start_control_plane
  # While kube-apiserver starts: the nodes' namespaces and OVS.
  local i node
  for ((i = 0; i < NODES; i++)); do
    node="$(node_name "${i}")"
    create_node_netns "${i}"
    start_node_ovs "${node}"
  done
  log "node namespaces and OVS ready ($((SECONDS - t0))s); waiting for kube-apiserver"
  wait_apiserver
  log "kube-apiserver ready ($((SECONDS - t0))s)"
  setup_agent_identity
  create_node_objects
  for ((i = 0; i < NODES; i++)); do
    start_agent "$(node_name "${i}")"
  done
  cat >"${STATE_FILE}" <<EOF
# Written by hack/local-cluster.sh up; read by its other commands.
STATE_NODES=${NODES}
STATE_UNDERLAY=${UNDERLAY}
STATE_POD_CIDR_BASE=${POD_CIDR_BASE}
STATE_IP_FAMILY=${IP_FAMILY}
EOF
  case "${IP_FAMILY}" in
    ipv4) log "agents started ($((SECONDS - t0))s); waiting for every node to have $((NODES - 1)) remote ARP flow(s) in table 20" ;;
    ipv6) log "agents started ($((SECONDS - t0))s); waiting for every node to have $((NODES - 1)) remote NDP flow(s) in table 21" ;;
    dual) log "agents started ($((SECONDS - t0))s); waiting for every node to have $((NODES - 1)) remote ARP flow(s) in table 20 and $((NODES - 1)) NDP flow(s) in table 21" ;;
  esac
  wait_converged
  local ms=$((($(date +%s%N) - start_ns) / 1000000))
  log "cluster '${NAME}' is up and converged in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
  log "  kubectl:  hack/local-cluster.sh $([[ ${NAME} == nrt ]] || echo "--name ${NAME} ")kubectl get nodes -o wide"
  log "  a node:   hack/local-cluster.sh $([[ ${NAME} == nrt ]] || echo "--name ${NAME} ")exec worker1 -- ovs-ofctl dump-flows br-int table=20 --no-stats"
  [[ "${IP_FAMILY}" == ipv4 ]] ||
    log "  IPv6:     hack/local-cluster.sh $([[ ${NAME} == nrt ]] || echo "--name ${NAME} ")exec worker1 -- ovs-ofctl dump-flows br-int table=21 --no-stats"
  log "  tear down: hack/local-cluster.sh down$([[ ${NAME} == nrt ]] || echo " --name ${NAME}")"
}

cmd_down() {
  require_root
  derive
  local -a pids=() namespaces=()
  local ns pid f
  mapfile -t namespaces < <(cluster_netns_list)
  # 1. Processes: pidfiles (checked to still be ours), everything inside the
  #    cluster's namespaces, and anything whose command line names OUT_DIR.
  if [[ -d "${OUT_DIR}" ]]; then
    while IFS= read -r f; do
      pid="$(read_pid "${f}")"
      pid_alive "${pid}" && pid_is_ours "${pid}" && pids+=("${pid}")
    done < <(find "${OUT_DIR}" -name '*.pid' -type f 2>/dev/null)
  fi
  for ns in "${namespaces[@]}"; do
    while IFS= read -r pid; do [[ -n "${pid}" ]] && pids+=("${pid}"); done < <(ip netns pids "${ns}" 2>/dev/null || true)
  done
  while IFS= read -r pid; do pids+=("${pid}"); done < <(pids_with_cmdline "${OUT_DIR}/")
  mapfile -t pids < <(printf '%s\n' "${pids[@]}" | grep -E '^[0-9]+$' | grep -vxF -e "$$" -e "${BASHPID}" | sort -un || true)
  if ((${#pids[@]} > 0)); then
    log "down '${NAME}': stopping ${#pids[@]} process(es): $(for p in "${pids[@]}"; do printf '%s(%s) ' "${p}" "$(proc_name "${p}")"; done)"
    # In order: agents (and anything else in the namespaces), OVS,
    # kube-apiserver, etcd (the API server shuts down slowly without etcd).
    local -a g1=() g2=() g3=() g4=()
    for p in "${pids[@]}"; do
      case "$(proc_name "${p}")" in
        ovsdb-server|ovs-vswitchd) g2+=("${p}") ;;
        kube-apiserver) g3+=("${p}") ;;
        etcd) g4+=("${p}") ;;
        *) g1+=("${p}") ;;
      esac
    done
    stop_pids "${g1[@]}"
    stop_pids "${g2[@]}"
    stop_pids "${g3[@]}"
    stop_pids "${g4[@]}"
    wait_reaped 5 "${pids[@]}"
  fi
  # 2. Namespaces (their links go with them): nodes first, the underlay last.
  for ns in "${namespaces[@]}"; do
    [[ "${ns}" == "${NET_NS}" ]] && continue
    ip netns delete "${ns}" 2>/dev/null || true
  done
  local n
  for n in "${namespaces[@]}"; do
    [[ "${n}" == "${NET_NS}" ]] && { ip netns delete "${NET_NS}" 2>/dev/null || true; }
  done
  # 3. Files.
  local had_dir=0
  [[ -e "${OUT_DIR}" ]] && had_dir=1 && rm -rf "${OUT_DIR}"
  rmdir "${CLUSTERS_DIR}" 2>/dev/null || true # CLUSTERS_DIR: from derive
  # 4. Check.
  local rest_ns rest_ps
  rest_ns="$(cluster_netns_list | tr '\n' ' ')"
  rest_ps="$(pids_with_cmdline "${OUT_DIR}/" | tr '\n' ' ')"
  [[ -z "${rest_ns}" && -z "${rest_ps}" ]] || die "down '${NAME}': still there: namespaces [${rest_ns}] processes [${rest_ps}]"
  if ((${#namespaces[@]} == 0 && ${#pids[@]} == 0 && had_dir == 0)); then
    log "down '${NAME}': nothing to remove"
  else
    log "down '${NAME}': removed ${#pids[@]} process(es), namespace(s) [${namespaces[*]}]$( ((had_dir)) && echo ", ${OUT_DIR#"${REPO_ROOT}/"}")"
  fi
}

cmd_status() {
  require_root
  derive
  if [[ ! -f "${STATE_FILE}" ]]; then
    if [[ -e "${OUT_DIR}" || -n "$(cluster_netns_list)" ]]; then
      echo "cluster '${NAME}': NOT UP (leftovers: namespaces [$(cluster_netns_list | tr '\n' ' ')]; 'down' removes them)"
    else
      echo "cluster '${NAME}': not up"
    fi
    return 1
  fi
  load_state
  local ok=0 health
  health="$(kubectl_admin get --raw /readyz 2>&1 | head -n1)" || true
  [[ "${health}" == ok ]] || ok=1
  printf "cluster '%s': underlay %s (netns %s), %d node(s)\n" "${NAME}" "${UNDERLAY}" "${NET_NS}" "${NODES}"
  printf "  etcd pid %s %s, kube-apiserver pid %s %s, %s /readyz: %s\n" \
    "$(read_pid "${ETCD_PID}")" "$(pid_alive "$(read_pid "${ETCD_PID}")" && echo running || echo DEAD)" \
    "$(read_pid "${APISERVER_PID}")" "$(pid_alive "$(read_pid "${APISERVER_PID}")" && echo running || echo DEAD)" \
    "${API_URL}" "${health}"
  local nodes_json=""
  [[ "${health}" == ok ]] && nodes_json="$(kubectl_admin get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.podCIDRs[*]}{"\n"}{end}' 2>/dev/null || true)"
  printf '  %-9s %-18s %-13s %-16s %-9s %-16s %s\n' NODE NETNS NODE-IP AGENT OVS POD-CIDR "ARP/NDP-FLOWS(have/want)"
  local i node apid agent ovs cidr flows want
  for ((i = 0; i < NODES; i++)); do
    node="$(node_name "${i}")"
    apid="$(read_pid "$(node_path "${AGENT_PID_T}" "${node}")")"
    if pid_alive "${apid}"; then agent="running(${apid})"; else agent="DEAD"; ok=1; fi
    if pid_alive "$(read_pid "$(node_path "${OVSDB_PID_T}" "${node}")")" &&
      pid_alive "$(read_pid "$(node_path "${VSWITCHD_PID_T}" "${node}")")" &&
      in_node "${node}" ovs-appctl --timeout=2 -t "$(node_path "${VSWITCHD_CTL_T}" "${node}")" version >/dev/null 2>&1; then
      ovs="running"
    else
      ovs="DOWN"; ok=1
    fi
    cidr="$(awk -v n="${node}" '$1 == n { c = $2; for (i = 3; i <= NF; i++) c = c "," $i; print c }' <<<"${nodes_json}")"
    [[ -n "${cidr}" ]] || cidr="(no Node)"
    flows="$(remote_flow_count "${node}")"
    # Wanted: one per pod CIDR of every other Node object (an ARP
    # responder per IPv4 CIDR, an NDP responder per IPv6 one).
    want="$(awk -v n="${node}" '$1 != n { w += NF - 1 } END { print w + 0 }' <<<"${nodes_json}")"
    [[ "${flows}" == "${want}" ]] || ok=1
    printf '  %-9s %-18s %-13s %-16s %-9s %-16s %s\n' "${node}" "$(node_ns "${node}")" "$(node_ip "${i}")" \
      "${agent}" "${ovs}" "${cidr}" "${flows}/${want}"
  done
  return "${ok}"
}

# Leading --name NAME (or --name=NAME) of exec and kubectl; sets NARGS to
# what follows. A '--' ends our options.
leading_name_opt() {
  NARGS=()
  while (($#)); do
    case "$1" in
      --name) NAME="${2:?--name needs a value}"; shift 2 ;;
      --name=*) NAME="${1#--name=}"; shift ;;
      *) break ;;
    esac
  done
  NARGS=("$@")
}

cmd_exec() { # [--name NAME] NODE [--] CMD...
  require_root
  leading_name_opt "$@"
  set -- "${NARGS[@]}"
  derive
  (($# >= 1)) || die "usage: exec NODE -- CMD [ARGS...]"
  local node=$1
  shift
  [[ "${1:-}" == -- ]] && shift
  (($# >= 1)) || die "usage: exec NODE -- CMD [ARGS...]"
  load_state
  if [[ "${node}" == net ]]; then
    exec ip netns exec "${NET_NS}" env PATH="${REPO_ROOT}/bin:${K8S_BIN_DIR}:${PATH}" "$@"
  fi
  require_node "${node}"
  local ovs
  ovs="$(node_ovs_dir "${node}")"
  exec ip netns exec "$(node_ns "${node}")" env \
    OVS_RUNDIR="${ovs}" OVS_DBDIR="${ovs}" OVS_LOGDIR="${ovs}" OVS_SYSCONFDIR="${ovs}" \
    NODEROUTE_API_SOCKET="$(node_path "${AGENT_SOCK_T}" "${node}")" \
    PATH="${REPO_ROOT}/bin:${PATH}" "$@"
}

cmd_kubectl() { # [--name NAME] [--] ARGS...
  require_root
  leading_name_opt "$@"
  set -- "${NARGS[@]}"
  [[ "${1:-}" == -- ]] && shift
  derive
  load_state
  exec ip netns exec "${NET_NS}" "${KUBECTL}" --kubeconfig "${ADMIN_KUBECONFIG}" "$@"
}

# stop-api / start-api: stop kube-apiserver and etcd, start them again with
# the same data, certificates and tokens. For tests of what agents do while
# the control plane is away.
cmd_stop_api() {
  require_root
  derive
  load_state
  lc_tool stop kube-apiserver
  lc_tool stop etcd
}

cmd_start_api() { # [--etcd-only] and the common options
  local etcd_only=0
  local -a rest=()
  while (($#)); do
    case "$1" in
      --etcd-only) etcd_only=1 ;;
      *) rest+=("$1") ;;
    esac
    shift
  done
  parse_common_opts "${rest[@]}"
  require_root
  derive
  load_state
  local pid
  if ((etcd_only)); then
    pid="$(read_pid "${ETCD_PID}")"
    if pid_alive "${pid}"; then
      log "etcd of '${NAME}' is already running (pid ${pid})"
    else
      start_etcd
    fi
    wait_etcd
    log "etcd of '${NAME}' ready (pid $(read_pid "${ETCD_PID}")); kube-apiserver $(pid_alive "$(read_pid "${APISERVER_PID}")" && echo running || echo stopped)"
    return 0
  fi
  pid="$(read_pid "${APISERVER_PID}")"
  if pid_alive "${pid}"; then
    log "kube-apiserver of '${NAME}' is already running (pid ${pid})"
  else
    pid_alive "$(read_pid "${ETCD_PID}")" || start_etcd
    start_apiserver
  fi
  wait_apiserver
  log "kube-apiserver of '${NAME}' ready (pid $(read_pid "${APISERVER_PID}"))"
}

cmd_restart_agent() { # NODE [--kill]
  require_root
  derive
  local node="" sig=TERM
  while (($#)); do
    case "$1" in
      --kill) sig=KILL ;;
      --caps) AGENT_CAPS="${2?--caps needs a value}"; shift ;;
      --caps=*) AGENT_CAPS="${1#--caps=}" ;;
      --name) NAME="${2:?--name needs a value}"; derive; shift ;;
      --name=*) NAME="${1#--name=}"; derive ;;
      -*) die "restart-agent: unknown option $1" ;;
      *) [[ -z "${node}" ]] || die "restart-agent takes one NODE"; node=$1 ;;
    esac
    shift
  done
  [[ -n "${node}" ]] || die "usage: restart-agent NODE [--kill] [--caps CAPS]"
  load_state
  require_node "${node}"
  agent_launcher # checks --caps before the running agent is stopped
  stop_agent "${node}" "${sig}"
  install_agent_binary
  start_agent "${node}"
  local log_file
  log_file="$(node_path "${AGENT_LOG_T}" "${node}")"
  log "agent of ${node} started again (pid $(read_pid "$(node_path "${AGENT_PID_T}" "${node}")")); log: ${log_file#"${REPO_ROOT}/"}"
}

cmd_stop_agent() { # NODE
  require_root
  derive
  local node=""
  while (($#)); do
    case "$1" in
      --name) NAME="${2:?--name needs a value}"; derive; shift ;;
      --name=*) NAME="${1#--name=}"; derive ;;
      -*) die "stop-agent: unknown option $1" ;;
      *) [[ -z "${node}" ]] || die "stop-agent takes one NODE"; node=$1 ;;
    esac
    shift
  done
  [[ -n "${node}" ]] || die "usage: stop-agent NODE"
  load_state
  require_node "${node}"
  stop_agent "${node}" TERM
  log "agent of ${node} stopped; 'restart-agent ${node}' starts it again"
}

cmd_logs() { # NODE [-f] [-n LINES]
  derive
  local node="" follow=0 lines=100
  while (($#)); do
    case "$1" in
      -f|--follow) follow=1 ;;
      -n) lines="${2:?-n needs a value}"; shift ;;
      --name) NAME="${2:?--name needs a value}"; derive; shift ;;
      --name=*) NAME="${1#--name=}"; derive ;;
      -*) die "logs: unknown option $1" ;;
      *) node=$1 ;;
    esac
    shift
  done
  [[ -n "${node}" ]] || die "usage: logs NODE [-f] [-n LINES]"
  load_state
  require_node "${node}"
  if ((follow)); then
    exec tail -n "${lines}" -F "$(node_path "${AGENT_LOG_T}" "${node}")"
  fi
  exec tail -n "${lines}" "$(node_path "${AGENT_LOG_T}" "${node}")"
}

# ---------------------------------------------------------------------------

parse_common_opts() { # options of up/down/status; sets REST
  while (($#)); do
    case "$1" in
      --name) NAME="${2:?--name needs a value}"; shift ;;
      --name=*) NAME="${1#--name=}" ;;
      --nodes) NODES="${2:?--nodes needs a value}"; shift ;;
      --nodes=*) NODES="${1#--nodes=}" ;;
      --underlay) UNDERLAY="${2:?--underlay needs a value}"; shift ;;
      --underlay=*) UNDERLAY="${1#--underlay=}" ;;
      --pod-cidr-base) POD_CIDR_BASE="${2:?--pod-cidr-base needs a value}"; shift ;;
      --pod-cidr-base=*) POD_CIDR_BASE="${1#--pod-cidr-base=}" ;;
      --timeout) CONVERGE_TIMEOUT="${2:?--timeout needs a value}"; shift ;;
      --timeout=*) CONVERGE_TIMEOUT="${1#--timeout=}" ;;
      --recreate) RECREATE=1 ;;
      --ipv4) IP_FAMILY=ipv4 ;;
      --ipv6) IP_FAMILY=ipv6 ;;
      --dual-stack) IP_FAMILY=dual ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument '$1' (see hack/local-cluster.sh help)" ;;
    esac
    shift
  done
}

main() {
  # Global options before the command.
  while (($#)); do
    case "$1" in
      --name) NAME="${2:?--name needs a value}"; shift 2 ;;
      --name=*) NAME="${1#--name=}"; shift ;;
      *) break ;;
    esac
  done
  local cmd="${1:-help}"
  (($#)) && shift
  case "${cmd}" in
    up) parse_common_opts "$@"; cmd_up ;;
    down) parse_common_opts "$@"; cmd_down ;;
    status) parse_common_opts "$@"; cmd_status ;;
    exec) cmd_exec "$@" ;;
    kubectl) cmd_kubectl "$@" ;;
    restart-agent) cmd_restart_agent "$@" ;;
    stop-agent) cmd_stop_agent "$@" ;;
    logs) cmd_logs "$@" ;;
    stop-api) parse_common_opts "$@"; cmd_stop_api ;;
    start-api) cmd_start_api "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; die "unknown command '${cmd}'" ;;
  esac
}

main "$@"
