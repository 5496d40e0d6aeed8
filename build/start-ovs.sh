#!/usr/bin/env bash
# Runs ovsdb-server and ovs-vswitchd in the foreground of the DaemonSet's
# `ovs` container, sharing /var/run/openvswitch with the agent container.
# The database lives under /var/lib/openvswitch (a hostPath), so bridges
# and the agent's flow round survive container restarts.
set -euo pipefail
DB=/var/lib/openvswitch/conf.db
RUN=/var/run/openvswitch
mkdir -p "$RUN" "$(dirname "$DB")"
[ -f "$DB" ] || ovsdb-tool create "$DB" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$DB" --remote="punix:$RUN/db.sock" --pidfile="$RUN/ovsdb-server.pid" --detach --log-file
ovs-vsctl --no-wait init
exec ovs-vswitchd "unix:$RUN/db.sock" --pidfile="$RUN/ovs-vswitchd.pid" --log-file
