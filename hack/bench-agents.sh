#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# Before/after of agent changes (docs/performance.md): the same cluster of N
# Nodes (hack/local-cluster.sh, name nrt-cmp, one node "master"), several
# agent binaries, each started in turn (restart-agent, the Nodes installed)
# ROUNDS times, in rotation so that a change of load hits them all alike.
# For each start: new agent start -> first full sync, and the list's part of
# it (agent log), the agent's CPU and VmHWM after the full sync; then status
# heartbeats (nrbench heartbeat) with their CPU per update and the syncs they
# caused, and the VmHWM after them.
#
#   hack/bench-agents.sh [--n N] [--rounds R] [--gomemlimit L] NAME=BINARY...
#
# e.g. hack/bench-agents.sh old=/tmp/agent-old new=bin/noderoute-agent
# Prints one line per start; raw NRBENCH key=value lines go to
# _output/bench/agents-<date>/<NAME>.txt. As root; the cluster is removed at
# the end and bin/noderoute-agent put back.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
N=5000 ROUNDS=3 GOMEMLIMIT_AGENT="" HB_RATE=300 HB_SECONDS=10 SHAPE=realistic
agents=()
while (($#)); do
  case "$1" in
  --n) N=$2; shift 2 ;;
  --rounds) ROUNDS=$2; shift 2 ;;
  --gomemlimit) GOMEMLIMIT_AGENT=$2; shift 2 ;;
  --hb-rate) HB_RATE=$2; shift 2 ;;
  --shape) SHAPE=$2; shift 2 ;;
  *=*) agents+=("$1"); shift ;;
  *) echo "usage: $0 [--n N] [--rounds R] [--gomemlimit L] [--hb-rate R] [--shape S] NAME=BINARY..." >&2; exit 2 ;;
  esac
done
((${#agents[@]})) || { echo "bench-agents: no NAME=BINARY given" >&2; exit 2; }
for a in "${agents[@]}"; do [[ -x "${a#*=}" ]] || { echo "bench-agents: ${a#*=} is not an executable" >&2; exit 2; }; done

NAME=nrt-cmp
LC=("${REPO_ROOT}/hack/local-cluster.sh" --name "${NAME}")
DIR="${REPO_ROOT}/_output/clusters/${NAME}"
LOG="${DIR}/master/agent.log"
OUT="${REPO_ROOT}/_output/bench/agents-$(date -u +%Y%m%dT%H%M%SZ)"
NRBENCH="${REPO_ROOT}/_output/bench/nrbench"
mkdir -p "${OUT}"
log() { printf '[bench-agents] %s\n' "$*" >&2; }
trap '"${LC[@]}" down >&2 || true; cp "${REPO_ROOT}/_output/bench-agents-bin.orig" "${REPO_ROOT}/bin/noderoute-agent" 2>/dev/null || true' EXIT

go build -o "${NRBENCH}" ./hack/tools/nrbench
"${LC[@]}" up --nodes 1 --recreate >&2
cp "${REPO_ROOT}/bin/noderoute-agent" "${REPO_ROOT}/_output/bench-agents-bin.orig"
log "creating ${N} ${SHAPE} Nodes"
ip netns exec "${NAME}-master" "${NRBENCH}" create --kubeconfig "${DIR}/admin.kubeconfig" --count "${N}" \
  --shape "${SHAPE}" --route-netns "/var/run/netns/${NAME}-master" --poll 100ms >/dev/null

agent_pid() { tr -dc '0-9' <"${DIR}/master/agent.pid"; }
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }

for ((round = 1; round <= ROUNDS; round++)); do
  for a in "${agents[@]}"; do
    name="${a%%=*}" bin="${a#*=}" f="${OUT}/${name}.txt"
    # restart-agent installs bin/noderoute-agent into the cluster.
    cp "${bin}" "${REPO_ROOT}/bin/noderoute-agent"
    from="$(wc -l <"${LOG}")"
    if [[ -n "${GOMEMLIMIT_AGENT}" ]]; then
      GOMEMLIMIT="${GOMEMLIMIT_AGENT}" "${LC[@]}" restart-agent master >&2
    else
      "${LC[@]}" restart-agent master >&2
    fi
    until tail -n "+$((from + 1))" "${LOG}" | grep -q '"First full sync done"'; do sleep 0.05; done
    pid="$(agent_pid)"
    {
      echo "NRBENCH round=${round}"
      echo "NRBENCH load=$(cut -d' ' -f1 /proc/loadavg)"
      "${NRBENCH}" logtimes --log "${LOG}" --from-line "${from}" --prefix start
      echo "NRBENCH synced_hwm_mb=$(hwm "${pid}")"
      echo "NRBENCH synced_cpu_s=$(cpu "${pid}")"
      ip netns exec "${NAME}-master" "${NRBENCH}" heartbeat --kubeconfig "${DIR}/admin.kubeconfig" --count "${N}" \
        --rate "${HB_RATE}" --duration "${HB_SECONDS}s" --idle 3s --agent-pid "${pid}" 2>/dev/null
      echo "NRBENCH hb_hwm_mb=$(hwm "${pid}")"
    } >"${f}.round${round}"
    cat "${f}.round${round}" >>"${f}"
    log "$(printf '%-8s round %d: start->synced %ss (list %ss), VmHWM %s MB, CPU %ss; heartbeats: %s us/update, %s node syncs, VmHWM %s MB' \
      "${name}" "${round}" \
      "$(awk -F= '/start_full_sync_s=/ { print $2 }' "${f}.round${round}")" \
      "$(awk -F= '/start_informer_populated_s=/ { print $2 }' "${f}.round${round}")" \
      "$(awk -F= '/synced_hwm_mb=/ { print $2 }' "${f}.round${round}")" \
      "$(awk -F= '/synced_cpu_s=/ { print $2 }' "${f}.round${round}")" \
      "$(awk -F= '/hb_agent_cpu_per_update_us=/ { printf "%.0f", $2 }' "${f}.round${round}")" \
      "$(awk -F= '/hb_node_syncs_delta=/ { print $2 }' "${f}.round${round}")" \
      "$(awk -F= '/hb_hwm_mb=/ { print $2 }' "${f}.round${round}")")"
  done
done
log "raw values: ${OUT#"${REPO_ROOT}/"}"
