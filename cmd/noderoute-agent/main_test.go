package main

import "testing"

// Bad values end the process with code 2 before anything is touched (no
// OVS, no API server exists in this test, so touching would fail otherwise).
func TestBadFlagsExitWithCode2(t *testing.T) {
	t.Setenv("NODE_NAME", "worker1")
	for _, args := range [][]string{
		{"--virtual-mac=zz"},
		{"--ovs-datapath-type=dpdk"},
		{"--node-name="},
		{"--no-such-flag"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("run(%v) = %d, want 2", args, code)
		}
	}
	if code := run([]string{"--version"}); code != 0 {
		t.Errorf("--version exit code %d, want 0", code)
	}
}
