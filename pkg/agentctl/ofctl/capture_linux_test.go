//go:build linux

package ofctl

import (
	"context"
	"encoding/hex"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
)

var update = flag.Bool("update", false, "rewrite testdata/ from a real bridge (needs root and OVS)")

// goldenFile returns testdata/<file>, or with -update writes out there and
// reports that it did (the caller then has nothing to compare).
func goldenFile(t *testing.T, file, out string) (golden string, updated bool) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return "", true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to capture)", err)
	}
	return string(b), false
}

// arpRequest is an ARP request from 02:00:00:00:00:01 (10.222.1.1) for
// worker2's gateway 10.222.2.1, as the kernel of worker1 sends it.
const arpRequest = "ffffffffffff" + "020000000001" + "0806" + "0001" + "0800" + "06" + "04" + "0001" +
	"020000000001" + "0ade0101" + "000000000000" + "0ade0201"

// neighborSolicitation is the Neighbor Solicitation worker1's kernel sends
// for worker2's IPv6 gateway fd00:10:222:2::1: from 02:00:00:00:00:01
// (fd00:10:222:1::1) to the solicited-node multicast address, with a
// source link-layer address option.
func neighborSolicitation() string {
	src := net.ParseIP("fd00:10:222:1::1").To16()
	dst := net.ParseIP("ff02::1:ff00:1").To16()
	target := net.ParseIP("fd00:10:222:2::1").To16()
	mac := []byte{2, 0, 0, 0, 0, 1}
	icmp := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, target...)
	icmp = append(append(icmp, 1, 1), mac...)
	// Checksum over the pseudo-header and the message.
	pseudo := append(append(append([]byte{}, src...), dst...), 0, 0, 0, byte(len(icmp)), 0, 0, 0, 58)
	var sum uint32
	data := append(pseudo, icmp...)
	for i := 0; i+1 < len(data); i += 2 {
		sum += uint32(data[i])<<8 | uint32(data[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	icmp[2], icmp[3] = byte(^sum>>8), byte(^sum)
	ip := append([]byte{0x60, 0, 0, 0, 0, byte(len(icmp)), 58, 255}, src...)
	ip = append(append(ip, dst...), icmp...)
	eth := append([]byte{0x33, 0x33, 0xff, 0, 0, 1}, mac...)
	eth = append(append(eth, 0x86, 0xdd), ip...)
	return hex.EncodeToString(eth)
}

// goldenBridge is the bridge the golden files were captured from: the
// agent's flows for the three-Node example cluster, dual-stack, on worker1
// (round 1; master and worker2 have an IPv6 CIDR too), a flow added by hand
// in table 20 (cookie 0), a flow with timeouts in a table the agent does not
// use, and one ARP request for 10.222.2.1 and one Neighbor Solicitation for
// fd00:10:222:2::1 sent through the pipeline so that counters are not all
// 0.
func goldenBridge(t *testing.T) *ovstest.Instance {
	t.Helper()
	inst := ovstest.Start(t)
	if out, err := inst.Vsctl("add-br", "br-int", "--", "set", "bridge", "br-int",
		"datapath_type=netdev", "protocols=OpenFlow10,OpenFlow13", "fail_mode=secure"); err != nil {
		t.Fatalf("create bridge: %v: %s", err, out)
	}
	mac, _ := net.ParseMAC("aa:bb:cc:dd:ee:ff")
	c := openflow.NewOFClient("br-int", inst.MgmtSock("br-int"), mac)
	t.Cleanup(c.Disconnect)
	if err := c.Initialize(1); err != nil {
		t.Fatal(err)
	}
	// In a fixed order: ovs-ofctl lists flows of one table in an order
	// that depends on when they were added.
	for _, n := range []struct{ node, gw4, gw6 string }{
		{"master", "10.222.0.1", "fd00:10:222::1"},
		{"worker2", "10.222.2.1", "fd00:10:222:2::1"},
	} {
		if err := c.InstallNodeFlows(n.node, []net.IP{net.ParseIP(n.gw4), net.ParseIP(n.gw6)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"add-flow", "br-int", "table=20,priority=5,udp,actions=drop"},
		{"add-flow", "br-int", "cookie=0x5,table=7,idle_timeout=300,hard_timeout=600,priority=9,ip,nw_dst=10.9.9.9,actions=output:LOCAL"},
		{"add-flow", "br-int", "table=7,actions=drop"},
		{"packet-out", "br-int", "in_port=LOCAL packet=" + arpRequest + " actions=resubmit(,0)"},
		{"packet-out", "br-int", "in_port=LOCAL packet=" + neighborSolicitation() + " actions=resubmit(,0)"},
	} {
		if out, err := inst.Ofctl(args...); err != nil {
			t.Fatalf("ovs-ofctl %v: %v: %s", args, err, out)
		}
	}
	return inst
}

// TestGoldenFilesMatchRealBridge checks that testdata/ still is what this
// machine's ovs-ofctl prints for the golden bridge (durations and ages
// aside), and rewrites it with -update.
func TestGoldenFilesMatchRealBridge(t *testing.T) {
	inst := goldenBridge(t)
	target := Target{RunDir: inst.RunDir, Bridge: "br-int"}
	ctx := context.Background()
	capture := map[string][]string{
		// What agentctl runs.
		"dump-nostats.txt": Exec{}.Args(target, DumpOptions{Table: AllTables, NoStats: true}),
		"dump-stats.txt":   Exec{}.Args(target, DumpOptions{Table: AllTables}),
		"dump-table20.txt": Exec{}.Args(target, DumpOptions{Table: 20, NoStats: true}),
		// What an operator without --names gets: a reply header and
		// idle_age.
		"dump-stats-legacy.txt": {"dump-flows", "br-int"},
	}
	for file, args := range capture {
		out, err := inst.Ofctl(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		// ovstest trims the output; ovs-ofctl starts every flow line
		// with a space and ends it with a newline.
		out = restoreLeadingSpace(out) + "\n"
		golden, updated := goldenFile(t, file, out)
		if updated {
			continue
		}
		got, err := Parse(out)
		if err != nil {
			t.Fatalf("%s from the real bridge: %v", file, err)
		}
		want, err := Parse(golden)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d flows on the bridge, %d in the golden file:\n%s", file, len(got), len(want), out)
		}
		for i := range got {
			if got[i].Text() != want[i].Text() || (got[i].Stats == nil) != (want[i].Stats == nil) ||
				(got[i].Stats != nil && (got[i].Stats.Packets != want[i].Stats.Packets || got[i].Stats.Bytes != want[i].Stats.Bytes)) {
				t.Errorf("%s flow %d:\n got %s\nwant %s", file, i, got[i].Line, want[i].Line)
			}
		}
		if strings.HasSuffix(file, "nostats.txt") || file == "dump-table20.txt" {
			if out != string(golden) {
				t.Errorf("%s differs byte for byte:\n%s\nwant:\n%s", file, out, golden)
			}
		}
	}

	// Exec, as agentctl uses it, gets the same flows.
	flows, err := Exec{}.DumpFlows(ctx, target, DumpOptions{Table: 20, NoStats: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 5 || flows[0].Table != 20 || flows[0].Stats != nil {
		t.Errorf("Exec dump of table 20: %+v", flows)
	}
	withStats, err := Exec{}.DumpFlows(ctx, target, DumpOptions{Table: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(withStats) != 3 || withStats[0].Stats == nil {
		t.Errorf("Exec dump of table 0 with stats: %+v", withStats)
	}
	// The ARP request and the solicitation each went their way, and the
	// solicitation through both NDP tables.
	for _, table := range []int{0, 20, 21, 22} {
		flows, err := Exec{}.DumpFlows(ctx, target, DumpOptions{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		var packets uint64
		for _, f := range flows {
			if f.Priority == 200 {
				packets += f.Stats.Packets
			}
		}
		want := uint64(1)
		if table == 0 {
			want = 2
		}
		if packets != want {
			t.Errorf("table %d: %d packets in its priority-200 flows, want %d:\n%+v", table, packets, want, flows)
		}
	}

	// A bridge that does not exist: the error names the socket it tried.
	_, err = Exec{}.DumpFlows(ctx, Target{RunDir: inst.RunDir, Bridge: "br-nope"}, DumpOptions{Table: AllTables})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(inst.RunDir, "br-nope.mgmt")) {
		t.Errorf("dump of a missing bridge: %v", err)
	}
}

// restoreLeadingSpace puts back the space ovstest's TrimSpace took from the
// first line (flow lines start with one; header lines do not).
func restoreLeadingSpace(out string) string {
	if strings.HasPrefix(out, "cookie=") || strings.HasPrefix(out, "table=") || strings.HasPrefix(out, "priority=") || strings.HasPrefix(out, "actions=") {
		return " " + out
	}
	return out
}
