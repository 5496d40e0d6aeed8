package ovstest

import (
	"strings"
	"testing"
)

func TestStartBridgeAndFlows(t *testing.T) {
	inst := Start(t)

	if _, err := inst.Vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev"); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	// Both ways of naming the target must work: tests elsewhere use
	// either.
	for _, target := range []string{"br-int", "unix:" + inst.MgmtSock("br-int")} {
		out, err := inst.Ofctl("dump-flows", target)
		if err != nil {
			t.Fatalf("dump-flows %s: %v", target, err)
		}
		if !strings.Contains(out, "actions=NORMAL") {
			t.Errorf("dump-flows %s: want the default NORMAL flow, got:\n%s", target, out)
		}
	}
	// The bridge's internal interface lives in the instance's netns, not
	// on the host.
	if _, err := inst.Exec("ip", "link", "show", "br-int"); err != nil {
		t.Errorf("br-int not in netns %s: %v", inst.NetNS, err)
	}
}

func TestRestartVswitchd(t *testing.T) {
	inst := Start(t)
	if _, err := inst.Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"); err != nil {
		t.Fatalf("adding bridge: %v", err)
	}
	if _, err := inst.Ofctl("add-flow", "br0", "priority=10,actions=drop"); err != nil {
		t.Fatalf("add-flow: %v", err)
	}
	inst.StopVswitchd()
	if _, err := inst.Ofctl("dump-flows", "br0"); err == nil {
		t.Fatal("dump-flows succeeded with vswitchd stopped")
	}
	inst.StartVswitchd()
	// Flows do not survive a vswitchd restart; the bridge (in the DB)
	// does.
	out, err := inst.Ofctl("dump-flows", "br0")
	if err != nil {
		t.Fatalf("dump-flows after restart: %v", err)
	}
	if strings.Contains(out, "priority=10") {
		t.Errorf("flow survived restart:\n%s", out)
	}
}

// A long test name makes t.TempDir() too long for unix socket paths; Start
// must then fall back to a short directory.
func TestLongTestNameUsesShortRunDir(t *testing.T) {
	t.Run(strings.Repeat("a_very_long_subtest_name_", 4), func(t *testing.T) {
		inst := Start(t)
		if len(inst.MgmtSock("br-0123456789ab")) >= 108 {
			t.Errorf("mgmt socket path too long: %s", inst.MgmtSock("br-0123456789ab"))
		}
	})
}
