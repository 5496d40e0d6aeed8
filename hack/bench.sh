#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# Scale benchmark of noderoute-agent (make bench). As root, on this
# machine: a local cluster (hack/local-cluster.sh, name nrt-bench, one real
# node "master" with its own OVS, userspace datapath, and agent) plus N
# remote Node objects bench-<i> (pod CIDR 10.(128+i/256).(i%256).0/24), for
# each N of BENCH_N, measures
#
#   cold start   agent start -> all N flows and routes (wiped bridge and
#                routes), from the agent's own log lines
#   floor        ovs-ofctl --bundle add-flows of the agent's own table 20
#                into a fresh bridge + ip -batch of its own routes into the
#                node's namespace, where its ovs-vswitchd listens
#   heartbeats   status-only Node updates at a kubelet-like rate: agent CPU
#                per update, and whether any reached a sync
#   incremental  Nodes added, then deleted, one at a time, at each pace of
#                BENCH_RATES: client-go call returned -> route and flow
#   burst        BENCH_BURST Nodes created at once -> all programmed
#   restart      hack/local-cluster.sh restart-agent with N installed ->
#                converged, and whether a route or flow was ever missing
#   memory/CPU   the agent's VmHWM and utime+stime
#
# and prints one table per N (nrbench table; also in
# _output/bench/<date>/table.txt, raw values in results-<N>.txt). The
# cluster is removed at the end, also on failure. See docs/performance.md.
#
# Environment:
#   BENCH_N="1000 5000"  Node counts
#   BENCH_SHAPE=realistic  Nodes as a kubelet writes them (about 10 KB of
#                        JSON each); minimal: name, label, pod CIDR
#   BENCH_REPS=3         cold starts (each with its floor) and restarts per N
#   BENCH_WORKERS=16     concurrent Creates when making the N Nodes
#   BENCH_RATES="20ms:200 100ms:100 1s:40"
#                        incremental runs, PAUSE:COUNT each: COUNT Nodes
#                        added, then deleted, one at a time, PAUSE between
#   BENCH_HB_RATE=500    status updates per second (a kubelet per Node every
#                        10 s at 5000 Nodes) ...
#   BENCH_HB_SECONDS=30  ... for this long; 0 skips the phase
#   BENCH_BURST=1000     Nodes created at once (then deleted); 0 skips it
#   BENCH_PROFILE=0      1: perf record (cpu-clock) of the agent and
#                        ovs-vswitchd during the first cold start of each N
#   BENCH_GOMEMLIMIT     the agent's GOMEMLIMIT (default: the DaemonSet's,
#                        from deploy/base/noderoute-agent.yaml; "" for none)
#   BENCH_HEAP_PROFILE=0 1: the agent built with -tags pprof; heap profiles
#                        (in use and allocated) after each cold start and
#                        after the last phase, heap-<N>-*.txt
#   BENCH_KEEP=0         1: leave the cluster up at the end (for inspection)

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"

BENCH_N="${BENCH_N:-1000 5000}"
BENCH_SHAPE="${BENCH_SHAPE:-realistic}"
BENCH_REPS="${BENCH_REPS:-3}"
BENCH_WORKERS="${BENCH_WORKERS:-16}"
BENCH_RATES="${BENCH_RATES:-20ms:200 100ms:100 1s:40}"
BENCH_HB_RATE="${BENCH_HB_RATE:-500}"
BENCH_HB_SECONDS="${BENCH_HB_SECONDS:-30}"
BENCH_BURST="${BENCH_BURST:-1000}"
BENCH_PROFILE="${BENCH_PROFILE:-0}"
BENCH_KEEP="${BENCH_KEEP:-0}"
BENCH_HEAP_PROFILE="${BENCH_HEAP_PROFILE:-0}"
# The agent runs as in the DaemonSet: with its GOMEMLIMIT.
manifest_gomemlimit() {
  awk '/- name: GOMEMLIMIT/ { getline; gsub(/"/, "", $2); print $2; exit }' "${REPO_ROOT}/deploy/base/noderoute-agent.yaml"
}
BENCH_GOMEMLIMIT="${BENCH_GOMEMLIMIT-$(manifest_gomemlimit)}"
SYNC_TIMEOUT="${BENCH_SYNC_TIMEOUT:-900}"

NAME=nrt-bench
NODE=master
LC=("${REPO_ROOT}/hack/local-cluster.sh" --name "${NAME}")
CLUSTER_DIR="${REPO_ROOT}/_output/clusters/${NAME}"
NODE_NS="${NAME}-${NODE}"
NODE_NS_PATH="/var/run/netns/${NODE_NS}"
OVS_DIR="${CLUSTER_DIR}/${NODE}/ovs"
MGMT="${OVS_DIR}/br-int.mgmt"
AGENT_LOG="${CLUSTER_DIR}/${NODE}/agent.log"
AGENT_PID_FILE="${CLUSTER_DIR}/${NODE}/agent.pid"
KUBECONFIG_ADMIN="${CLUSTER_DIR}/admin.kubeconfig"
FLOOR_NS="nrbench-floor-$$"
FLOOR_BR="br-floor"
# The agent's profiling endpoint in the node's namespace (BENCH_HEAP_PROFILE).
PPROF_ADDR=127.0.0.1:6060

RUN_DIR="${REPO_ROOT}/_output/bench/$(date -u +%Y%m%dT%H%M%SZ)"
NRBENCH="${REPO_ROOT}/_output/bench/nrbench"
TABLE="${RUN_DIR}/table.txt"

# Processes this script starts in the background (sampler, perf): ended by
# pid in cleanup, never by name.
BG_PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

cleanup() {
  local rc=$?
  set +e
  local p
  for p in "${BG_PIDS[@]}"; do
    # Only if it is still the process we started (pids are reused).
    grep -qaE 'nrbench|perf' "/proc/${p}/cmdline" 2>/dev/null || continue
    kill -INT "${p}" 2>/dev/null && sleep 0.5
    kill -KILL "${p}" 2>/dev/null
  done
  ip netns delete "${FLOOR_NS}" 2>/dev/null
  if [[ -f "${CLUSTER_DIR}/cluster.env" ]]; then
    in_node ovs-vsctl --timeout=5 --if-exists del-br "${FLOOR_BR}" >/dev/null 2>&1
  fi
  if ((BENCH_KEEP)); then
    log "BENCH_KEEP=1: cluster ${NAME} left up ('hack/local-cluster.sh down --name ${NAME}' removes it)"
  else
    log "removing cluster ${NAME}"
    "${LC[@]}" down >&2 || rc=1
  fi
  ((rc == 0)) || log "failed (exit ${rc}); raw results in ${RUN_DIR#"${REPO_ROOT}/"}"
  exit "${rc}"
}

in_node() { "${LC[@]}" exec "${NODE}" -- "$@"; }
# restart_agent: hack/local-cluster.sh restart-agent, the agent with
# BENCH_GOMEMLIMIT (the new agent inherits the environment).
restart_agent() {
  if [[ -n "${BENCH_GOMEMLIMIT}" ]]; then
    GOMEMLIMIT="${BENCH_GOMEMLIMIT}" "${LC[@]}" restart-agent "${NODE}" >&2
  else
    "${LC[@]}" restart-agent "${NODE}" >&2
  fi
}
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.6f", a / b }'; }
# kv FILE KEY: last value of NRBENCH KEY=... in FILE.
kv() { awk -v k="$2" 'index($0, "NRBENCH " k "=") == 1 { v = substr($0, length("NRBENCH " k "=") + 1) } END { print v }' "$1"; }
# put FILE KEY VALUE
put() { printf 'NRBENCH %s=%s\n' "$2" "$3" >>"$1"; }
agent_pid() { tr -dc '0-9' <"${AGENT_PID_FILE}"; }
pid_of() { tr -dc '0-9' <"$1"; }
route_count() { in_node ip -4 route show proto 94 | wc -l; }
flow_count() { ovs-ofctl --timeout=30 dump-flows "unix:${MGMT}" table=20 --no-stats | grep -c 'priority=200' || true; }

# wait_full_sync FROM_LINE: until a "First full sync done" line follows line
# FROM_LINE of the agent log; fails when the agent dies or after SYNC_TIMEOUT.
wait_full_sync() {
  local from=$1 deadline=$((SECONDS + SYNC_TIMEOUT)) pid
  until tail -n "+$((from + 1))" "${AGENT_LOG}" | grep -q '"First full sync done"'; do
    pid="$(agent_pid 2>/dev/null || true)"
    [[ -n "${pid}" && -e "/proc/${pid}" ]] || die "agent died; tail of its log:
$(tail -n 20 "${AGENT_LOG}")"
    ((SECONDS < deadline)) || die "no \"First full sync done\" within ${SYNC_TIMEOUT}s; tail of the agent log:
$(tail -n 20 "${AGENT_LOG}")"
    sleep 0.05
  done
}

# procstat FILE PREFIX: RSS and CPU of the agent, OVS and the control plane.
procstat() {
  local out
  out="$("${NRBENCH}" procstat \
    agent="$(agent_pid)" \
    vswitchd="$(pid_of "${OVS_DIR}/ovs-vswitchd.pid")" \
    ovsdb="$(pid_of "${OVS_DIR}/ovsdb-server.pid")" \
    apiserver="$(pid_of "${CLUSTER_DIR}/control-plane/kube-apiserver.pid")" \
    etcd="$(pid_of "${CLUSTER_DIR}/control-plane/etcd.pid")")"
  printf '%s\n' "${out//NRBENCH proc_/NRBENCH $2_}" >>"$1"
}

# heap_profile NAME N: the agent's heap profile (BENCH_HEAP_PROFILE=1), and
# its top entries by bytes in use and by bytes allocated since the start.
heap_profile() {
  ((BENCH_HEAP_PROFILE)) || return 0
  local out="${RUN_DIR}/heap-$2-$1"
  ip netns exec "${NODE_NS}" curl -sf -o "${out}.pb.gz" "http://${PPROF_ADDR}/debug/pprof/heap" ||
    die "no heap profile from the agent at ${PPROF_ADDR} (built with -tags pprof?)"
  {
    go tool pprof -top -nodecount=15 -sample_index=inuse_space "${out}.pb.gz"
    echo
    go tool pprof -top -nodecount=15 -sample_index=alloc_space "${out}.pb.gz"
  } >"${out}.txt" 2>/dev/null
}

# cold_start FILE REP: wipe the agent's bridge and routes, start the agent,
# read its log; then the floor of the same flows and routes.
cold_start() {
  local f=$1 rep=$2 n=$3 from t0 perf_pid=""
  # The running agent is stopped first: it would put a deleted bridge back
  # (its bridge monitor) and restore deleted routes (its route watcher).
  # restart-agent then finds no agent to stop and starts a new one.
  # Checked below: nothing is there just before the start.
  local old
  procstat "${f}" "cold${rep}_before"
  old="$(agent_pid)"
  kill -TERM "${old}" 2>/dev/null || true
  for _ in $(seq 150); do [[ -d "/proc/${old}" ]] || break; sleep 0.1; done
  [[ ! -d "/proc/${old}" ]] || die "agent ${old} still running 15 s after SIGTERM"
  in_node ovs-vsctl --timeout=30 del-br br-int
  in_node ip route flush proto 94
  [[ "$(in_node ovs-vsctl --timeout=30 list-br | grep -cx br-int || true)" == 0 ]] || die "br-int still there after del-br"
  [[ "$(route_count)" == 0 ]] || die "routes with proto 94 still there after the flush"
  from="$(wc -l <"${AGENT_LOG}")"
  put "${f}" "cold${rep}_load" "$(load)"
  t0="$(now)"
  restart_agent
  if ((BENCH_PROFILE && rep == 1)) && command -v perf >/dev/null; then
    perf record -q -e cpu-clock -F 999 -g -o "${RUN_DIR}/perf-${n}.data" \
      -p "$(agent_pid),$(pid_of "${OVS_DIR}/ovs-vswitchd.pid")" >/dev/null 2>&1 &
    perf_pid=$!
    BG_PIDS+=("${perf_pid}")
  fi
  wait_full_sync "${from}"
  put "${f}" "cold${rep}_cmd_to_seen_s" "$(fsub "$(now)" "${t0}")"
  procstat "${f}" "cold${rep}_after"
  heap_profile "cold${rep}" "${n}"
  if [[ -n "${perf_pid}" ]]; then
    kill -INT "${perf_pid}" 2>/dev/null || true
    wait "${perf_pid}" 2>/dev/null || true
    perf report -i "${RUN_DIR}/perf-${n}.data" --stdio --no-children --sort comm,dso,symbol 2>/dev/null |
      grep -v '^$' | head -n 400 >"${RUN_DIR}/perf-${n}.txt" || true
    perf report -i "${RUN_DIR}/perf-${n}.data" --stdio --no-children --sort comm,dso -g none 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -n 30 >"${RUN_DIR}/perf-${n}-dso.txt" || true
  fi
  "${NRBENCH}" logtimes --log "${AGENT_LOG}" --from-line "${from}" --prefix "cold${rep}" >>"${f}"
  put "${f}" "cold${rep}_flows" "$(flow_count)"
  put "${f}" "cold${rep}_routes" "$(route_count)"

  # Floor, right after, with the agent's own flows and routes.
  put "${f}" "floor${rep}_load" "$(load)"
  ovs-ofctl --timeout=30 dump-flows "unix:${MGMT}" table=20 --no-stats |
    sed -E 's/^ +//; s/(duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ?//g' >"${RUN_DIR}/flows-${n}.txt"
  in_node ovs-vsctl --timeout=30 add-br "${FLOOR_BR}" -- set bridge "${FLOOR_BR}" datapath_type=netdev \
    fail_mode=secure protocols=OpenFlow10,OpenFlow13,OpenFlow14
  local deadline=$((SECONDS + 30))
  until ovs-ofctl --timeout=5 show "unix:${OVS_DIR}/${FLOOR_BR}.mgmt" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "bridge ${FLOOR_BR} has no OpenFlow socket after 30s"
    sleep 0.05
  done
  t0="$(now)"
  ovs-ofctl --timeout=120 --bundle add-flows "unix:${OVS_DIR}/${FLOOR_BR}.mgmt" "${RUN_DIR}/flows-${n}.txt"
  put "${f}" "floor${rep}_flows_s" "$(fsub "$(now)" "${t0}")"
  put "${f}" "floor${rep}_flow_lines" "$(wc -l <"${RUN_DIR}/flows-${n}.txt")"
  put "${f}" "floor${rep}_flows_installed" "$(ovs-ofctl --timeout=30 dump-flows "unix:${OVS_DIR}/${FLOOR_BR}.mgmt" --no-stats | grep -c 'table=20' || true)"
  in_node ovs-vsctl --timeout=30 del-br "${FLOOR_BR}"

  in_node ip -4 route show proto 94 |
    sed -E 's/ +$//; s/ dev antrea-gw0/ dev gw0/; s/^/route add /; s/$/ proto 94/' >"${RUN_DIR}/routes-${n}.batch"
  ip netns add "${FLOOR_NS}"
  ip -n "${FLOOR_NS}" link add gw0 type veth peer name gw0p
  ip -n "${FLOOR_NS}" link set gw0p up
  ip -n "${FLOOR_NS}" link set gw0 up
  # Like antrea-gw0: the node's gateway address (an onlink gateway needs a
  # main table to exist, which the connected route creates).
  ip -n "${FLOOR_NS}" addr add 10.222.0.1/24 dev gw0
  t0="$(now)"
  ip -n "${FLOOR_NS}" -batch "${RUN_DIR}/routes-${n}.batch"
  put "${f}" "floor${rep}_routes_s" "$(fsub "$(now)" "${t0}")"
  put "${f}" "floor${rep}_routes_installed" "$(ip -n "${FLOOR_NS}" -4 route show proto 94 | wc -l)"
  ip netns delete "${FLOOR_NS}"

  # Not the floor, but what it leaves out: the same routes into the node's
  # own namespace, where its ovs-vswitchd follows every route change (in
  # table 100, so they do not clash with the agent's in main). The batch
  # itself, then until ovs-vswitchd is idle again, and its CPU meanwhile.
  local vs c0 t1
  vs="$(pid_of "${OVS_DIR}/ovs-vswitchd.pid")"
  sed 's/ dev gw0 / dev antrea-gw0 /; s/ proto 94$/ proto 94 table 100/' "${RUN_DIR}/routes-${n}.batch" >"${RUN_DIR}/routes-${n}-t100.batch"
  settle "${vs}"
  c0="$(cpu_ticks "${vs}")"
  t0="$(now)"
  ip -n "${NODE_NS}" -batch "${RUN_DIR}/routes-${n}-t100.batch"
  t1="$(now)"
  settle "${vs}"
  put "${f}" "floor${rep}_nodens_routes_s" "$(fsub "${t1}" "${t0}")"
  put "${f}" "floor${rep}_nodens_settled_s" "$(fsub "${SETTLED_AT}" "${t0}")"
  put "${f}" "floor${rep}_nodens_vswitchd_cpu_s" "$(fdiv "$(($(cpu_ticks "${vs}") - c0))" 100)"
  ip -n "${NODE_NS}" route flush table 100
  settle "${vs}"
}

# cpu_ticks PID: utime+stime in clock ticks (1/100 s).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# settle PID: wait (at most 60 s) until PID used under 10% of a CPU over
# half a second; SETTLED_AT is when that half second began.
settle() {
  local deadline=$((SECONDS + 60)) a b t
  while :; do
    t="$(now)"
    a="$(cpu_ticks "$1")"
    sleep 0.5
    b="$(cpu_ticks "$1")"
    if ((b - a <= 5 || SECONDS >= deadline)); then
      SETTLED_AT="${t}"
      return 0
    fi
  done
}

# restart FILE REP N: restart-agent with N installed while nrbench samples.
restart() {
  local f=$1 rep=$2 n=$3 from t0 t1 stop ready spid
  stop="${RUN_DIR}/stop-${n}-${rep}"
  ready="${RUN_DIR}/ready-${n}-${rep}"
  ip netns exec "${NODE_NS}" "${NRBENCH}" sample --route-netns "${NODE_NS_PATH}" --ovs-mgmt "${MGMT}" \
    --start 0 --count "${n}" --stop-file "${stop}" --ready-file "${ready}" \
    >"${RUN_DIR}/sample-${n}-${rep}.out" 2>"${RUN_DIR}/sample-${n}-${rep}.err" &
  spid=$!
  BG_PIDS+=("${spid}")
  local deadline=$((SECONDS + 60))
  until [[ -f "${ready}" ]]; do
    kill -0 "${spid}" 2>/dev/null || die "sampler exited: $(cat "${RUN_DIR}/sample-${n}-${rep}.err")"
    ((SECONDS < deadline)) || die "sampler not ready after 60s"
    sleep 0.05
  done
  from="$(wc -l <"${AGENT_LOG}")"
  put "${f}" "restart${rep}_load" "$(load)"
  t0="$(now)"
  restart_agent
  wait_full_sync "${from}"
  t1="$(now)"
  put "${f}" "restart${rep}_cmd_to_seen_s" "$(fsub "${t1}" "${t0}")"
  # Keep sampling a little past the round swap.
  sleep 1
  touch "${stop}"
  wait "${spid}" || die "sampler failed: $(cat "${RUN_DIR}/sample-${n}-${rep}.err")"
  rm -f "${stop}" "${ready}"
  sed "s/^NRBENCH /NRBENCH restart${rep}_/" "${RUN_DIR}/sample-${n}-${rep}.out" >>"${f}"
  "${NRBENCH}" logtimes --log "${AGENT_LOG}" --from-line "${from}" --prefix "restart${rep}" >>"${f}"
  put "${f}" "restart${rep}_cmd_to_full_sync_s" "$(fsub "$(kv "${f}" "restart${rep}_full_sync_unix")" "${t0}")"
  procstat "${f}" "restart${rep}_after"
  put "${f}" "restart${rep}_flows" "$(flow_count)"
  put "${f}" "restart${rep}_routes" "$(route_count)"
}

# heartbeats FILE N: status-only updates of the N Nodes at BENCH_HB_RATE.
heartbeats() {
  local f=$1 n=$2
  ((BENCH_HB_SECONDS > 0)) || return 0
  log "N=${n}: status heartbeats: ${BENCH_HB_RATE}/s for ${BENCH_HB_SECONDS}s (10 s of idle CPU first)"
  put "${f}" hb_load "$(load)"
  ip netns exec "${NODE_NS}" "${NRBENCH}" heartbeat --kubeconfig "${KUBECONFIG_ADMIN}" --start 0 --count "${n}" \
    --rate "${BENCH_HB_RATE}" --duration "${BENCH_HB_SECONDS}s" --agent-pid "$(agent_pid)" >>"${f}"
}

# incremental FILE N: for each PAUSE:COUNT of BENCH_RATES, COUNT Nodes
# added, then deleted, one at a time (keys g<PAUSE>_...).
incremental() {
  local f=$1 n=$2 rate gap count
  for rate in ${BENCH_RATES}; do
    gap="${rate%%:*}" count="${rate##*:}"
    log "N=${n}: incremental: ${count} Nodes added, then deleted, one at a time, ${gap} apart"
    put "${f}" "g${gap}_load" "$(load)"
    ip netns exec "${NODE_NS}" "${NRBENCH}" incremental --kubeconfig "${KUBECONFIG_ADMIN}" --start "${n}" \
      --count "${count}" --gap "${gap}" --shape "${BENCH_SHAPE}" --prefix "g${gap}_" \
      --route-netns "${NODE_NS_PATH}" --ovs-mgmt "${MGMT}" >>"${f}"
  done
}

# burst FILE N: BENCH_BURST Nodes created at once, then deleted at once.
burst() {
  local f=$1 n=$2
  ((BENCH_BURST > 0)) || return 0
  log "N=${n}: burst: ${BENCH_BURST} Nodes created at once (${BENCH_WORKERS} workers), then deleted"
  put "${f}" burst_load "$(load)"
  local common=(--kubeconfig "${KUBECONFIG_ADMIN}" --start "${n}" --count "${BENCH_BURST}" --workers "${BENCH_WORKERS}"
    --route-netns "${NODE_NS_PATH}" --ovs-mgmt "${MGMT}")
  ip netns exec "${NODE_NS}" "${NRBENCH}" create "${common[@]}" --shape "${BENCH_SHAPE}" --prefix burst >>"${f}"
  ip netns exec "${NODE_NS}" "${NRBENCH}" delete "${common[@]}" --prefix unburst >>"${f}"
}

bench_n() {
  local n=$1 rep
  local f="${RUN_DIR}/results-${n}.txt"
  : >"${f}"
  put "${f}" bench_n "${n}"
  put "${f}" bench_reps "${BENCH_REPS}"
  put "${f}" bench_shape "${BENCH_SHAPE}"
  put "${f}" bench_gomemlimit "${BENCH_GOMEMLIMIT:-none}"
  put "${f}" bench_rates "${BENCH_RATES}"
  put "${f}" bench_date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  put "${f}" bench_cpus "$(nproc)"
  put "${f}" bench_kernel "$(uname -r)"
  put "${f}" bench_ovs "$(ovs-vsctl --version | head -n1)"
  log "===== N=${n}: cluster ${NAME}"
  "${LC[@]}" up --nodes 1 --recreate >&2
  put "${f}" agent_version "$(grep -o 'version="[^"]*"' "${AGENT_LOG}" | tail -n1 | cut -d'"' -f2)"

  log "N=${n}: creating ${n} ${BENCH_SHAPE} Nodes (${BENCH_WORKERS} workers); the running agent follows them"
  put "${f}" create_load "$(load)"
  ip netns exec "${NODE_NS}" "${NRBENCH}" create --kubeconfig "${KUBECONFIG_ADMIN}" --start 0 --count "${n}" \
    --workers "${BENCH_WORKERS}" --shape "${BENCH_SHAPE}" --route-netns "${NODE_NS_PATH}" --poll 100ms >>"${f}"
  [[ "$(flow_count)" == "${n}" ]] || die "after create: $(flow_count) ARP responder flows, want ${n}"

  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    log "N=${n}: cold start ${rep}/${BENCH_REPS} (wipe bridge and routes, restart the agent), then the floor"
    cold_start "${f}" "${rep}" "${n}"
    log "N=${n}: cold start ${rep}: $(kv "${f}" "cold${rep}_full_sync_s")s from start, floor $(kv "${f}" "floor${rep}_flows_s")s flows + $(kv "${f}" "floor${rep}_nodens_routes_s")s routes"
  done

  # The last cold-started agent goes through all of these: its VmHWM
  # afterwards is its peak over them.
  heartbeats "${f}" "${n}"
  incremental "${f}" "${n}"
  burst "${f}" "${n}"
  procstat "${f}" "post_run"
  heap_profile run "${n}"

  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    log "N=${n}: restart ${rep}/${BENCH_REPS} with ${n} installed, sampling routes and flows"
    restart "${f}" "${rep}" "${n}"
    log "N=${n}: restart ${rep}: converged $(kv "${f}" "restart${rep}_full_sync_s")s after the new agent's start; route samples missing: $(kv "${f}" "restart${rep}_route_samples_missing")"
  done

  if ((BENCH_KEEP)); then
    log "N=${n}: BENCH_KEEP=1: leaving the cluster up until the next N or the end"
  else
    log "N=${n}: removing cluster"
    "${LC[@]}" down >&2
  fi
  "${NRBENCH}" table --results "${f#"${REPO_ROOT}/"}" | tee -a "${TABLE}"
}

# ---------------------------------------------------------------------------

[[ "$(id -u)" == 0 ]] || die "must run as root (network namespaces, OVS)"
case "${BENCH_SHAPE}" in realistic | minimal) ;; *) die "BENCH_SHAPE: '${BENCH_SHAPE}' must be realistic or minimal" ;; esac
# Nodes above N (incremental, burst) use indexes N.. : the largest count
# bounds N (pod CIDRs 10.128.0.0/24 .. 10.255.255.0/24: 32768 of them).
extra="${BENCH_BURST}"
for rate in ${BENCH_RATES}; do
  [[ "${rate}" =~ ^[0-9]+(ms|s|us)[:][0-9]+$ ]] || die "BENCH_RATES: '${rate}' must be PAUSE:COUNT, e.g. 100ms:100"
  ((${rate##*:} <= extra)) || extra="${rate##*:}"
done
for v in BENCH_HB_RATE BENCH_HB_SECONDS BENCH_BURST; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "${v} must be a whole number"
done
for n in ${BENCH_N}; do
  if ! [[ "${n}" =~ ^[0-9]+$ ]] || ((n < 20 || n + extra > 32768)); then
    die "BENCH_N: '${n}' must be 20..$((32768 - extra))"
  fi
done
[[ "${BENCH_REPS}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be >= 1"
if ((BENCH_HEAP_PROFILE)); then
  # hack/local-cluster.sh's 'make build' and the agents it starts take
  # these from the environment (cmd/noderoute-agent/pprof.go).
  export GOFLAGS="$(go env GOFLAGS) -tags=pprof"
  export NODEROUTE_PPROF_ADDR="${PPROF_ADDR}"
fi
mkdir -p "${RUN_DIR}"
log "building nrbench"
go build -o "${NRBENCH}" ./hack/tools/nrbench
trap cleanup EXIT
trap 'exit 130' INT TERM
log "results in ${RUN_DIR#"${REPO_ROOT}/"}; load now: $(load)"
for n in ${BENCH_N}; do
  bench_n "${n}"
done
echo
log "all tables: ${TABLE#"${REPO_ROOT}/"}"
