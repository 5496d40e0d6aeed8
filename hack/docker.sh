#!/usr/bin/env bash
# Copyright The noderoute Authors.
#
# The Docker engine the image build and the kind cluster use.
#
#   hack/docker.sh up     use the engine that answers, or start one
#   hack/docker.sh down   stop the engine, only if `up` started it
#   hack/docker.sh status say which engine answers and who started it
#
# up: when `docker info` answers, that engine is used as it is and never
# stopped by `down`. Otherwise Debian's docker.io is installed when dockerd is
# missing, and dockerd is started in the background with its pid file and log
# in _output/docker/ (default socket and data root, so images stay between
# runs and plain `docker` commands work).
#
# Machines whose capability bounding set is incomplete (some CI sandboxes
# lack CAP_SYS_RESOURCE) cannot start privileged containers, which kind
# needs: runc fails with "unable to apply caps". On such a machine only, the
# dockerd started here gets hack/tools/runc-capfilter as its default
# runtime: runc with the capabilities that cannot be had taken out, the rest
# of privileged mode unchanged. An engine this script did not start is never
# reconfigured; if it has the same problem, kind fails and this script's
# `status` says why.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKER_DIR="${REPO_ROOT}/_output/docker"
PIDFILE="${DOCKER_DIR}/dockerd.pid"
LOGFILE="${DOCKER_DIR}/dockerd.log"
CAPFILTER="${REPO_ROOT}/_output/bin/runc-capfilter"
CAPFILTER_RUNTIME=noderoute-runc

log() { printf '[docker] %s\n' "$*"; }
die() { printf '[docker] ERROR: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# Our dockerd: the pid file's process is a dockerd started with that pid file.
our_pid() {
  local pid
  pid="$(tr -dc '0-9' <"${PIDFILE}" 2>/dev/null || true)"
  [[ -n "${pid}" && "$(cat "/proc/${pid}/comm" 2>/dev/null)" == dockerd ]] || return 1
  tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -qF -- "${PIDFILE}" || return 1
  echo "${pid}"
}

# Every capability this kernel knows is in our bounding set.
bounding_complete() {
  local last bnd
  last="$(cat /proc/sys/kernel/cap_last_cap)"
  bnd="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
  (( (16#${bnd}) == (1 << (last + 1)) - 1 ))
}

install_docker() {
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && return 0
  [[ "$(id -u)" == 0 ]] || die "dockerd is not installed and installing it needs root: apt-get install docker.io"
  log "installing Debian's docker.io (dockerd not found)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io; } \
    >"${DOCKER_DIR}/apt.log" 2>&1 || { tail -n 20 "${DOCKER_DIR}/apt.log" >&2; die "apt-get install docker.io failed (log: ${DOCKER_DIR}/apt.log)"; }
}

up() {
  mkdir -p "${DOCKER_DIR}"
  if engine_answers; then
    if our_pid >/dev/null; then
      log "dockerd already running (started by hack/docker.sh, pid $(our_pid))"
    else
      log "using the Docker engine that answers ($(docker info -f '{{.ServerVersion}}' 2>/dev/null)); not started here, so 'down' leaves it alone"
    fi
    return 0
  fi
  install_docker
  [[ "$(id -u)" == 0 ]] || die "no Docker engine answers and starting dockerd needs root"
  local -a args=(--pidfile "${PIDFILE}")
  if ! bounding_complete; then
    log "this machine's capability bounding set is incomplete ($(awk '/^CapBnd:/ { print $2 }' /proc/self/status)): privileged containers get runc-capfilter (hack/tools/runc-capfilter)"
    (cd "${REPO_ROOT}" && CGO_ENABLED=0 go build -o "${CAPFILTER}" ./hack/tools/runc-capfilter) ||
      die "building hack/tools/runc-capfilter failed"
    args+=(--add-runtime "${CAPFILTER_RUNTIME}=${CAPFILTER}" --default-runtime "${CAPFILTER_RUNTIME}")
  fi
  log "starting dockerd (log: ${LOGFILE#"${REPO_ROOT}/"})"
  setsid dockerd "${args[@]}" >>"${LOGFILE}" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + 60))
  until engine_answers; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 20 "${LOGFILE}" >&2
      die "dockerd exited at start (log: ${LOGFILE})"
    fi
    ((SECONDS < deadline)) || { kill "${pid}" 2>/dev/null; die "dockerd did not answer within 60 s (log: ${LOGFILE})"; }
    sleep 0.5
  done
  log "dockerd $(docker info -f '{{.ServerVersion}}') running (pid ${pid}); stop it with: hack/docker.sh down"
}

down() {
  local pid
  if ! pid="$(our_pid)"; then
    if engine_answers; then
      log "the Docker engine that answers was not started by hack/docker.sh: left running"
    else
      log "no dockerd of ours is running"
    fi
    rm -f "${PIDFILE}"
    return 0
  fi
  log "stopping dockerd (pid ${pid})"
  kill -TERM "${pid}"
  local deadline=$((SECONDS + 30))
  while kill -0 "${pid}" 2>/dev/null; do
    ((SECONDS < deadline)) || { log "dockerd still running after 30 s: SIGKILL"; kill -KILL "${pid}"; break; }
    sleep 0.5
  done
  log "dockerd stopped"
}

status() {
  if ! engine_answers; then
    log "no Docker engine answers"
    return 1
  fi
  local pid runtime
  runtime="$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)"
  if pid="$(our_pid)"; then
    log "dockerd $(docker info -f '{{.ServerVersion}}') started by hack/docker.sh (pid ${pid}), default runtime ${runtime}"
  else
    log "Docker engine $(docker info -f '{{.ServerVersion}}') not started here, default runtime ${runtime}"
  fi
  if ! bounding_complete && [[ "${runtime}" != "${CAPFILTER_RUNTIME}" ]]; then
    log "WARNING: this machine's bounding set lacks capabilities and the engine's runtime is ${runtime}: privileged containers (kind nodes) will fail with 'unable to apply caps'; stop that engine and use hack/docker.sh up"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $(basename "$0") up|down|status" >&2; exit 2 ;;
esac
