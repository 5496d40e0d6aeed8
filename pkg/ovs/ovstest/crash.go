package ovstest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// This file simulates OVS crashes: SIGKILL leaves no chance to clean up,
// so pidfiles, control sockets and the database lock stay behind, as they
// do when a node's OVS is OOM-killed or its container is killed.

// KillVswitchd kills ovs-vswitchd with SIGKILL and waits until it is gone.
// The bridges' kernel interfaces (taps, with the userspace datapath) go
// away with it; the database is untouched. StartVswitchd starts it again.
func (i *Instance) KillVswitchd() {
	i.t.Helper()
	d := i.takeDaemon(&i.vsdProc, "KillVswitchd: ovs-vswitchd")
	if err := d.kill(); err != nil {
		i.t.Fatalf("killing ovs-vswitchd: %v", err)
	}
}

// KillOvsdb kills ovsdb-server with SIGKILL and waits until it is gone.
// ovs-vswitchd, if running, keeps running and retries its connection, as
// it does on a real node. StartOvsdb starts the server again.
func (i *Instance) KillOvsdb() {
	i.t.Helper()
	d := i.takeDaemon(&i.dbProc, "KillOvsdb: ovsdb-server")
	if err := d.kill(); err != nil {
		i.t.Fatalf("killing ovsdb-server: %v", err)
	}
}

// WipeDatabase replaces the database with a fresh, empty one, as on a node
// whose conf.db was lost. ovsdb-server must be stopped (KillOvsdb).
func (i *Instance) WipeDatabase() {
	i.t.Helper()
	i.mu.Lock()
	running := i.dbProc != nil
	i.mu.Unlock()
	if running {
		i.t.Fatal("WipeDatabase: ovsdb-server is running")
	}
	if err := i.ovs.CreateDB(); err != nil {
		i.t.Fatalf("creating fresh database: %v", err)
	}
}

// StartOvsdb starts ovsdb-server on the existing database (kept, or made
// fresh by WipeDatabase), waits until it answers, and runs `ovs-vsctl init`
// as OVS's start script does on every start: a fresh database gets its
// Open_vSwitch row, an existing one is left as it is. If ovs-vswitchd is
// running, it also waits until vswitchd has reconnected and applied the
// database, so that a test's next change is not folded into that first
// reconfiguration.
func (i *Instance) StartOvsdb() {
	i.t.Helper()
	i.mu.Lock()
	running, vsd := i.dbProc != nil, i.vsdProc
	i.mu.Unlock()
	if running {
		i.t.Fatal("StartOvsdb: ovsdb-server is already running")
	}
	if err := i.startOvsdb(); err != nil {
		i.t.Fatalf("starting ovsdb-server: %v", err)
	}
	if err := i.ovs.Init(); err != nil {
		i.t.Fatal(err)
	}
	if vsd != nil {
		if err := i.ovs.WaitConfigured(vsd.exited); err != nil {
			i.t.Fatalf("waiting for ovs-vswitchd to reconnect to the restarted ovsdb-server: %v", err)
		}
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (d *daemon) kill() error {
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", d.name, err)
	}
	select {
	case <-d.done:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s did not exit after SIGKILL", d.name)
	}
}
