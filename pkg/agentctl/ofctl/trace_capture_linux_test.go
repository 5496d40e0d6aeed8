//go:build linux

package ofctl

import (
	"context"
	"net"
	"strings"
	"testing"
)

// gatewayMAC and the gateway addresses are those of worker1's antrea-gw0 in
// the golden traces (the MAC is fixed so that the files do not change from
// one capture to the next).
var gatewayMAC, _ = net.ParseMAC("02:00:00:00:00:01")

// traceCases are the golden traces: each gateway's request, traced in
// order; before some the bridge loses flows (by ovs-ofctl del-flows args).
var traceCases = []struct {
	file, src, target string
	delFlows          []string
}{
	{file: "trace-arp-answered.txt", src: "10.222.1.1", target: "10.222.2.1"},
	{file: "trace-ndp-answered.txt", src: "fd00:10:222:1::1", target: "fd00:10:222:2::1"},
	{file: "trace-arp-normal.txt", src: "10.222.1.1", target: "10.222.9.1"},
	{file: "trace-ndp-normal.txt", src: "fd00:10:222:1::1", target: "fd00:10:222:9::1"},
	{file: "trace-arp-drop.txt", src: "10.222.1.1", target: "10.222.9.1",
		delFlows: []string{"--strict", "table=20,priority=190,arp"}},
	{file: "trace-arp-nomatch.txt", src: "10.222.1.1", target: "10.222.9.1",
		delFlows: []string{"table=20"}},
}

// TestTraceGoldenFilesMatchRealBridge traces the kernel's ARP requests and
// Neighbor Solicitations through the golden bridge (see goldenBridge) with
// an antrea-gw0 port added, compares what this machine's ovs-appctl prints
// with testdata/trace-*.txt byte for byte, and rewrites them with -update.
func TestTraceGoldenFilesMatchRealBridge(t *testing.T) {
	inst := goldenBridge(t)
	if out, err := inst.Vsctl("add-port", "br-int", "antrea-gw0", "--", "set", "interface", "antrea-gw0", "type=internal"); err != nil {
		t.Fatalf("add antrea-gw0: %v: %s", err, out)
	}
	target := Target{RunDir: inst.RunDir, Bridge: "br-int"}
	for _, tc := range traceCases {
		if tc.delFlows != nil {
			if out, err := inst.Ofctl(append([]string{"del-flows", "br-int"}, tc.delFlows...)...); err != nil {
				t.Fatalf("del-flows %v: %v: %s", tc.delFlows, err, out)
			}
		}
		flow, err := ResolutionRequest("antrea-gw0", gatewayMAC, net.ParseIP(tc.src), net.ParseIP(tc.target))
		if err != nil {
			t.Fatal(err)
		}
		out, err := AppctlExec{}.Trace(context.Background(), target, flow)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if _, err := ParseTrace(out); err != nil {
			t.Errorf("%s from the real bridge: %v", tc.file, err)
		}
		golden, updated := goldenFile(t, tc.file, out)
		if updated {
			continue
		}
		if out != golden {
			t.Errorf("%s differs from this OVS's trace:\n%s\nwant:\n%s", tc.file, out, golden)
		}
	}

	// No such bridge: ovs-vswitchd's own words come through.
	_, err := AppctlExec{}.Trace(context.Background(), Target{RunDir: inst.RunDir, Bridge: "br-nope"}, "in_port=1,arp")
	if err == nil || !containsAll(err.Error(), "ofproto/trace", "br-nope: unknown bridge") {
		t.Errorf("trace on a missing bridge: %v", err)
	}
	// No vswitchd in the run directory.
	_, err = AppctlExec{}.Trace(context.Background(), Target{RunDir: t.TempDir(), Bridge: "br-int"}, "in_port=1,arp")
	if err == nil || !containsAll(err.Error(), "no control socket of ovs-vswitchd", "ovs-vswitchd.ctl") {
		t.Errorf("trace without vswitchd: %v", err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
