# shellcheck shell=bash
# Copyright The noderoute Authors.
#
# Helpers for hack/local-cluster.sh: logging and detached daemons tracked by
# pidfiles. Sourced, not run.

log() { printf '[local-cluster] %s\n' "$*"; }
die() { printf '[local-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (network namespaces, OVS)"
}

read_pid() { # PIDFILE -> pid or nothing
  [[ -f "$1" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$1" 2>/dev/null || true)"
  echo "${pid}"
}

# A zombie counts as gone: it does nothing and is reaped by init.
pid_alive() { # PID
  [[ -n "${1:-}" && -r "/proc/$1/stat" ]] || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# PID's command line names this cluster's output dir (so a stale pidfile
# whose pid was reused by something else is never signalled).
pid_is_ours() { # PID
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "${cmdline}" == *"${OUT_DIR}/"* ]]
}

proc_name() { cat "/proc/$1/comm" 2>/dev/null || echo '?'; }

# PIDs of live processes whose command line contains STRING. The first
# character is written as a bracket expression so grep never matches itself.
pids_with_cmdline() { # STRING
  local s=$1 re
  re="$(printf '%s' "${s:1}" | sed 's/[][\.*^$]/\\&/g')"
  re="[${s:0:1}]${re}"
  local f pid
  while IFS= read -r f; do
    pid="${f#/proc/}"
    pid="${pid%/cmdline}"
    [[ "${pid}" != "$$" && "${pid}" != "${BASHPID}" ]] && pid_alive "${pid}" && echo "${pid}"
  done < <(grep -laG -e "${re}" /proc/[0-9]*/cmdline 2>/dev/null || true)
}

wait_gone() { # TIMEOUT_SECONDS PID... -> 0 when none is alive
  local deadline=$((SECONDS + $1)) p any
  shift
  while :; do
    any=0
    for p in "$@"; do pid_alive "${p}" && any=1 && break; done
    ((any)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# start_daemon NAME PIDFILE LOGFILE NETNS CMD [ARGS...]
# Starts CMD inside NETNS in a session of its own, stdio on LOGFILE
# (appended, with a header line), detached from this script: the process
# writes its own pid before exec'ing, so PIDFILE holds CMD's pid.
start_daemon() {
  local name=$1 pidfile=$2 logfile=$3 ns=$4
  shift 4
  rm -f "${pidfile}"
  mkdir -p "$(dirname "${pidfile}")" "$(dirname "${logfile}")"
  printf '==== %s: starting %s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z')" "$*" >>"${logfile}"
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec ip netns exec "$1" "${@:2}"' \
    "${pidfile}" "${ns}" "$@" </dev/null >>"${logfile}" 2>&1 &
  local deadline=$((SECONDS + 10))
  until [[ -s "${pidfile}" ]]; do
    ((SECONDS < deadline)) || die "${name}: no pidfile ${pidfile} after 10s"
    sleep 0.02
  done
  sleep 0.1
  pid_alive "$(read_pid "${pidfile}")" || die "${name} exited at once; tail of ${logfile}:
$(tail -n 20 "${logfile}")"
}

# stop_pids PID...: SIGTERM, up to 15s, then SIGKILL; dies if one survives.
stop_pids() {
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  if ! wait_gone 15 "$@"; then
    local -a left=()
    local p
    for p in "$@"; do pid_alive "${p}" && left+=("${p}"); done
    log "SIGKILL ${left[*]} (still running 15s after SIGTERM)"
    kill -KILL "${left[@]}" 2>/dev/null || true
    wait_gone 10 "${left[@]}" || die "processes ${left[*]} survive SIGKILL"
  fi
}

# wait_reaped TIMEOUT PID...: dead processes stay zombies until init reaps
# them (here within a couple of seconds); wait for that so ps is clean.
wait_reaped() {
  local deadline=$((SECONDS + $1)) p left
  shift
  while :; do
    left=0
    for p in "$@"; do [[ -e "/proc/${p}" ]] && left=1 && break; done
    ((left && SECONDS < deadline)) || return 0
    sleep 0.1
  done
}
