#!/usr/bin/env bash
# Runs Open vSwitch in the DaemonSet's `ovs` container: ovsdb-server, then
# ovs-vswitchd, both children of this script (PID 1 of the container), logging
# to stderr so that `kubectl logs ... -c ovs` shows them.
#
# - The run directory (db.sock, <bridge>.mgmt, pidfiles, control sockets) is
#   shared with the agent container and with the host (hostPath), so the
#   agent, agentctl and ovs-vsctl/ovs-ofctl on the host all find OVS there.
# - The database lives on a hostPath of its own, so bridges, ports and the
#   agent's flow round (external_ids:noderoute-flow-round) survive container
#   and pod restarts. A database written by an older OVS is converted to the
#   image's schema, keeping its content.
# - The container exits as soon as either daemon exits (the kubelet restarts
#   it). On SIGTERM both daemons are stopped, ovs-vswitchd first, without
#   removing anything: the kernel datapath and its ports stay, so forwarding
#   of established flows goes on while OVS restarts.
# - Datapath: the agent creates the bridge with the datapath type of its
#   config file (ovsDatapathType, mounted at $NODEROUTE_CONFIG). This script
#   only checks the prerequisite and explains what is missing: the
#   openvswitch kernel module for "system" (the kernel loads it on demand
#   when ovs-vswitchd asks for its netlink family, so no capability is
#   needed here), /dev/net/tun for "netdev".
#
# Environment (the defaults are the DaemonSet's paths):
#   OVS_RUNDIR        run directory            (/var/run/openvswitch)
#   OVS_DBDIR         database directory       (/var/lib/noderoute/openvswitch)
#   OVS_SCHEMA        vswitchd schema          (/usr/share/openvswitch/vswitch.ovsschema)
#   NODEROUTE_CONFIG  the agent's config file  (/etc/noderoute/agent.yaml)
#   OVS_LOG_LEVEL     console log level        (info)
set -euo pipefail

export OVS_RUNDIR=${OVS_RUNDIR:-/var/run/openvswitch}
export OVS_DBDIR=${OVS_DBDIR:-/var/lib/noderoute/openvswitch}
SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
CONFIG=${NODEROUTE_CONFIG:-/etc/noderoute/agent.yaml}
LOG_LEVEL=${OVS_LOG_LEVEL:-info}
DB=${OVS_DBDIR}/conf.db
# Console only: no log files in the container, no syslog socket.
LOG_ARGS=("-vconsole:${LOG_LEVEL}" -vsyslog:off -vfile:off)

log() { echo "start-ovs: $*" >&2; }

# datapath_type prints ovsDatapathType from the agent's config file, "system"
# (the agent's default) when the file or the key is absent.
datapath_type() {
  local v=""
  if [[ -r "${CONFIG}" ]]; then
    v=$(sed -n -E 's/^ovsDatapathType:[[:space:]]*["'\'']?([A-Za-z]*)["'\'']?[[:space:]]*(#.*)?$/\1/p' "${CONFIG}" | tail -n 1)
  fi
  echo "${v:-system}"
}

check_datapath() {
  local dp
  dp=$(datapath_type)
  case "${dp}" in
    netdev)
      # Userspace datapath: every internal port (the bridge's own, the
      # gateway interface) is a tap device.
      if [[ ! -c /dev/net/tun ]]; then
        log "ovsDatapathType is netdev (${CONFIG}) but /dev/net/tun is missing: mount it from the host (deploy/overlays/netdev does)"
        exit 1
      fi
      log "datapath: netdev (userspace)"
      ;;
    system)
      # Asking for the datapath family makes the kernel load the module
      # if the host has it.
      ovs-dpctl show >/dev/null 2>&1 || true
      if [[ -d /sys/module/openvswitch ]]; then
        log "datapath: system (openvswitch kernel module loaded)"
      else
        log "WARNING: ovsDatapathType is system (${CONFIG}) but the openvswitch kernel module is not loaded and could not be loaded on demand;" \
          "run 'modprobe openvswitch' on the host, or use the userspace datapath (ovsDatapathType: netdev, deploy/overlays/netdev)." \
          "The agent cannot create its bridge until then."
      fi
      ;;
    *)
      log "WARNING: unknown ovsDatapathType ${dp} in ${CONFIG} (the agent will refuse it)"
      ;;
  esac
}

db_pid="" vsd_pid=""

stop_daemon() { # pid name
  [[ -n "$1" ]] || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
  log "$2 stopped"
}
stop() {
  trap - TERM INT
  log "stopping"
  stop_daemon "${vsd_pid}" ovs-vswitchd
  stop_daemon "${db_pid}" ovsdb-server
}
on_signal() {
  stop
  exit 0
}
trap on_signal TERM INT

mkdir -p "${OVS_RUNDIR}" "${OVS_DBDIR}"
if [[ ! -e "${DB}" ]]; then
  log "creating ${DB}"
  ovsdb-tool create "${DB}" "${SCHEMA}"
elif [[ "$(ovsdb-tool needs-conversion "${DB}" "${SCHEMA}")" == yes ]]; then
  log "converting ${DB} to schema $(ovsdb-tool schema-version "${SCHEMA}")"
  ovsdb-tool convert "${DB}" "${SCHEMA}"
fi

check_datapath

ovsdb-server "${DB}" --remote="punix:${OVS_RUNDIR}/db.sock" \
  --pidfile="${OVS_RUNDIR}/ovsdb-server.pid" "${LOG_ARGS[@]}" &
db_pid=$!
# --retry: wait for the socket to appear instead of failing at once.
if ! ovs-vsctl --retry --timeout=30 --no-wait init; then
  log "ovsdb-server did not answer on ${OVS_RUNDIR}/db.sock within 30s"
  stop
  exit 1
fi
log "ovsdb-server ready (pid ${db_pid}, database ${DB})"

ovs-vswitchd "unix:${OVS_RUNDIR}/db.sock" --pidfile="${OVS_RUNDIR}/ovs-vswitchd.pid" "${LOG_ARGS[@]}" &
vsd_pid=$!
log "ovs-vswitchd started (pid ${vsd_pid})"

# Exit (and let the kubelet restart the container) when either daemon exits.
status=0
wait -n "${db_pid}" "${vsd_pid}" || status=$?
if ! kill -0 "${vsd_pid}" 2>/dev/null; then
  log "ovs-vswitchd exited (status ${status})"
  vsd_pid=""
else
  log "ovsdb-server exited (status ${status})"
  db_pid=""
fi
stop
exit $((status == 0 ? 1 : status))
