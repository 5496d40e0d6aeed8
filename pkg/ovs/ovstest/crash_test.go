package ovstest

import (
	"strings"
	"testing"
)

func TestKillAndRestartOvsdb(t *testing.T) {
	inst := Start(t)
	if _, err := inst.Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	inst.KillOvsdb()
	if _, err := inst.Vsctl("--timeout=1", "list-br"); err == nil {
		t.Fatal("ovs-vsctl succeeded with ovsdb-server killed")
	}
	// Same database: the bridge is still there, and the stale pidfile,
	// control socket and lock left by SIGKILL do not stop the restart.
	inst.StartOvsdb()
	if out, err := inst.Vsctl("list-br"); err != nil || out != "br0" {
		t.Fatalf("list-br after restart: %q, %v; want br0", out, err)
	}
}

func TestKillBothAndWipeDatabase(t *testing.T) {
	inst := Start(t)
	if _, err := inst.Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	inst.KillVswitchd()
	inst.KillOvsdb()
	inst.WipeDatabase()
	inst.StartOvsdb()
	inst.StartVswitchd()
	if out, err := inst.Vsctl("list-br"); err != nil || out != "" {
		t.Fatalf("list-br on a fresh database: %q, %v; want none", out, err)
	}
	// The killed vswitchd's tap for br0 is still in the netns: OVS makes
	// its userspace-datapath taps persistent and deletes them only on a
	// clean exit. Tests of recovery must not expect interfaces to vanish
	// with a SIGKILL.
	if out, err := inst.Exec("ip", "link", "show", "br0"); err != nil || !strings.Contains(out, "br0") {
		t.Logf("note: br0's tap did not survive the SIGKILL (%v); OVS no longer makes taps persistent?", err)
	}
	// The fresh database is usable, as after a first start.
	if _, err := inst.Vsctl("add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev"); err != nil {
		t.Fatalf("adding bridge to the fresh database: %v", err)
	}
}
