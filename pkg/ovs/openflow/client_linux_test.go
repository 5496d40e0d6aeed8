package openflow

import (
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
)

var virtualMAC, _ = net.ParseMAC("aa:bb:cc:dd:ee:ff")

// seedTable20 reads worker1's table 20 on the three-Node example cluster,
// the dump the flows are modelled on (docs/design.md), from its copy in
// testdata/seed-table20.txt, so that the test runs without the shared
// folder holding the original (../shared/seed/table20-arp-responder.md);
// when the folder is there, the copy is checked against it.
func seedTable20(t *testing.T) []string {
	t.Helper()
	golden, err := os.ReadFile("testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(golden)), "\n")
	if seed, err := os.ReadFile("../../../../shared/seed/table20-arp-responder.md"); err == nil {
		for _, l := range lines {
			if !strings.Contains(string(seed), " "+l+"\n") {
				t.Fatalf("testdata/seed-table20.txt line not in the seed: %s", l)
			}
		}
	}
	return lines
}

func startBridge(tb testing.TB) *ovstest.Instance {
	tb.Helper()
	inst := ovstest.Start(tb)
	if out, err := inst.Vsctl("add-br", "br-int", "--", "set", "bridge", "br-int",
		"datapath_type=netdev", "protocols=OpenFlow10,OpenFlow13", "fail_mode=secure"); err != nil {
		tb.Fatalf("create bridge: %v: %s", err, out)
	}
	return inst
}

func dumpTable(t *testing.T, inst *ovstest.Instance, table string) []string {
	t.Helper()
	out, err := inst.Ofctl("dump-flows", "br-int", "table="+table, "--no-stats")
	if err != nil {
		t.Fatalf("dump-flows: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func sorted(lines []string) []string {
	out := append([]string(nil), lines...)
	sort.Strings(out)
	return out
}

func newTestClient(t *testing.T, inst *ovstest.Instance) *OFClient {
	t.Helper()
	c := NewOFClient("br-int", inst.MgmtSock("br-int"), virtualMAC)
	t.Cleanup(c.Disconnect)
	return c
}

func mustInstall(t *testing.T, c Client, node string, gws ...string) {
	t.Helper()
	var ips []net.IP
	for _, gw := range gws {
		ips = append(ips, net.ParseIP(gw))
	}
	if err := c.InstallNodeFlows(node, ips); err != nil {
		t.Fatalf("InstallNodeFlows(%s, %v): %v", node, gws, err)
	}
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("flows differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestSeedTable20OnRealBridge(t *testing.T) {
	inst := startBridge(t)
	c := newTestClient(t, inst)
	if err := c.Initialize(1); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, c, "master", "10.222.0.1")
	mustInstall(t, c, "worker2", "10.222.2.1")
	assertLines(t, dumpTable(t, inst, "20"), seedTable20(t))
	assertLines(t, sorted(dumpTable(t, inst, "0")), sorted([]string{
		"cookie=0x1000000000000, priority=200,arp actions=resubmit(,20)",
		"cookie=0x1000000000000, priority=200,icmp6,icmp_type=135 actions=resubmit(,21)",
		"cookie=0x1000000000000, priority=0 actions=NORMAL",
	}))

	// Idempotent: the same call sends nothing and changes nothing.
	mustInstall(t, c, "worker2", "10.222.2.1")
	assertLines(t, dumpTable(t, inst, "20"), seedTable20(t))

	// A podCIDR change replaces the node's flow; removal deletes it.
	mustInstall(t, c, "worker2", "10.222.9.1")
	if got := dumpTable(t, inst, "20"); len(got) != 4 || !strings.Contains(got[1], "arp_tpa=10.222.9.1") {
		t.Fatalf("after CIDR change, table 20:\n%s", strings.Join(got, "\n"))
	}
	if err := c.UninstallNodeFlows("worker2"); err != nil {
		t.Fatal(err)
	}
	if err := c.UninstallNodeFlows("master"); err != nil {
		t.Fatal(err)
	}
	assertLines(t, dumpTable(t, inst, "20"), seedTable20(t)[2:])
}

// ndpTables reads the NDP tables (21 and 22) of worker1 of the three-Node
// example cluster made dual-stack (master fd00:10:222::/64, worker2
// fd00:10:222:2::/64) as this machine's ovs-ofctl printed them.
func ndpTables(t *testing.T) []string {
	t.Helper()
	golden, err := os.ReadFile("testdata/ndp-tables.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(golden)), "\n")
}

// TestNdpFlowsOnRealBridge installs the flows of dual-stack Nodes: table 20
// stays as testdata/seed-table20.txt byte for byte, tables 21 and 22 hold
// the NDP responder and its second stage, every flow is as ExpectedBaseFlows
// and ExpectedResponderFlow say, and each family's flows come and go on
// their own.
func TestNdpFlowsOnRealBridge(t *testing.T) {
	inst := startBridge(t)
	c := newTestClient(t, inst)
	if err := c.Initialize(1); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, c, "master", "10.222.0.1", "fd00:10:222::1")
	mustInstall(t, c, "worker2", "fd00:10:222:2::1", "10.222.2.1")
	assertLines(t, dumpTable(t, inst, "20"), seedTable20(t))
	assertLines(t, append(dumpTable(t, inst, "21"), dumpTable(t, inst, "22")...), ndpTables(t))

	// Every flow on the bridge is one the expectations describe, and
	// nothing is missing.
	expected := func(gws ...string) []string {
		var out []string
		for _, f := range ExpectedBaseFlows(1, virtualMAC) {
			out = append(out, f.String())
		}
		for _, gw := range gws {
			f, err := ExpectedResponderFlow(1, virtualMAC, net.ParseIP(gw))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, f.String())
		}
		return sorted(out)
	}
	all := func() []string {
		out, err := inst.Ofctl("dump-flows", "br-int", "--no-stats")
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, l)
			}
		}
		return sorted(lines)
	}
	assertLines(t, all(), expected("10.222.0.1", "fd00:10:222::1", "10.222.2.1", "fd00:10:222:2::1"))

	// Addresses whose text form or halves are unusual render as expected
	// too: a zero upper half, two equal runs of zeros, a /120's gateway.
	mustInstall(t, c, "odd", "::1:0:0:1", "2001:db8:0:0:1::1", "fd00::101")
	assertLines(t, all(), expected("10.222.0.1", "fd00:10:222::1", "10.222.2.1", "fd00:10:222:2::1", "::1:0:0:1", "2001:db8:0:0:1::1", "fd00::101"))
	if err := c.UninstallNodeFlows("odd"); err != nil {
		t.Fatal(err)
	}

	// worker2 goes IPv4-only: its NDP flow goes, its ARP flow stays.
	mustInstall(t, c, "worker2", "10.222.2.1")
	assertLines(t, all(), expected("10.222.0.1", "fd00:10:222::1", "10.222.2.1"))
	// An IPv6-only node.
	mustInstall(t, c, "worker2", "fd00:10:222:9::1")
	assertLines(t, all(), expected("10.222.0.1", "fd00:10:222::1", "fd00:10:222:9::1"))
	if err := c.UninstallNodeFlows("master"); err != nil {
		t.Fatal(err)
	}
	if err := c.UninstallNodeFlows("worker2"); err != nil {
		t.Fatal(err)
	}
	assertLines(t, all(), expected())
}

// TestRestartWithNewRoundHasNoGap plays an agent restart: a second client
// takes over the bridge with the next round while a sampler dumps table 20
// continuously. Every sample must hold the flows both incarnations want, and
// after DeleteStaleFlows only the new round's flows (and a flow added by
// hand, cookie 0) may remain.
func TestRestartWithNewRoundHasNoGap(t *testing.T) {
	inst := startBridge(t)
	old := newTestClient(t, inst)
	if err := old.Initialize(1); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, old, "master", "10.222.0.1", "fd00:10:222::1")
	mustInstall(t, old, "worker2", "10.222.2.1", "fd00:10:222:2::1")
	if out, err := inst.Ofctl("add-flow", "br-int", "table=20,priority=5,udp,actions=drop"); err != nil {
		t.Fatalf("add foreign flow: %v: %s", err, out)
	}

	stop := make(chan struct{})
	samples := make(chan []string, 1000)
	go func() {
		defer close(samples)
		for {
			select {
			case <-stop:
				return
			default:
			}
			out, err := inst.Ofctl("dump-flows", "br-int", "table=20", "--no-stats")
			if err != nil {
				continue
			}
			samples <- strings.Split(out, "\n")
		}
	}()

	// Let the sampler see the old agent's table before the restart starts.
	first := <-samples
	if !strings.Contains(strings.Join(first, "\n"), "arp_tpa=10.222.0.1") {
		t.Fatalf("old agent's flows missing before the restart:\n%s", strings.Join(first, "\n"))
	}
	old.Disconnect()
	restarted := newTestClient(t, inst)
	if err := restarted.Initialize(2); err != nil {
		t.Fatal(err)
	}
	// master was deleted while the agent was down: only worker2 is wanted.
	mustInstall(t, restarted, "worker2", "10.222.2.1", "fd00:10:222:2::1")
	if err := restarted.DeleteStaleFlows(); err != nil {
		t.Fatal(err)
	}
	close(stop)

	n := 0
	for s := range samples {
		n++
		text := strings.Join(s, "\n")
		for _, want := range []string{"arp_tpa=10.222.2.1", "priority=190,arp actions=NORMAL", "priority=0 actions=drop"} {
			if !strings.Contains(text, want) {
				t.Fatalf("sample %d misses %q:\n%s", n, want, text)
			}
		}
	}
	if n == 0 {
		t.Fatal("sampler took no sample")
	}
	t.Logf("%d samples of table 20 during the restart, none missing a flow", n)

	assertLines(t, dumpTable(t, inst, "20"), []string{
		"cookie=0x2020000000000, table=20, priority=200,arp,arp_tpa=10.222.2.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:aa:bb:cc:dd:ee:ff,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],load:0xaabbccddeeff->NXM_NX_ARP_SHA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xade0201->NXM_OF_ARP_SPA[],IN_PORT",
		"cookie=0x2000000000000, table=20, priority=190,arp actions=NORMAL",
		"table=20, priority=5,udp actions=drop",
		"cookie=0x2000000000000, table=20, priority=0 actions=drop",
	})
	// Tables 21 and 22 too: round 2 only, master's NDP flow gone.
	want := []string{}
	for _, l := range ndpTables(t) {
		if !strings.Contains(l, "nd_target=fd00:10:222::1 ") {
			want = append(want, strings.Replace(l, "cookie=0x10", "cookie=0x20", 1))
		}
	}
	assertLines(t, append(dumpTable(t, inst, "21"), dumpTable(t, inst, "22")...), want)
}

// TestReplayAfterVswitchdRestart restarts ovs-vswitchd, which loses every
// flow; the client must reconnect by itself and put them all back.
func TestReplayAfterVswitchdRestart(t *testing.T) {
	inst := startBridge(t)
	c := newTestClient(t, inst)
	if err := c.Initialize(1); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, c, "master", "10.222.0.1", "fd00:10:222::1")
	mustInstall(t, c, "worker2", "10.222.2.1", "fd00:10:222:2::1")

	inst.StopVswitchd()
	inst.StartVswitchd()
	want := strings.Join(append(seedTable20(t), ndpTables(t)...), "\n")
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := strings.Join(append(append(dumpTable(t, inst, "20"), dumpTable(t, inst, "21")...), dumpTable(t, inst, "22")...), "\n")
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables 20-22 not replayed 20s after ovs-vswitchd came back:\n%s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The client works on the new connection.
	mustInstall(t, c, "worker3", "10.222.3.1")
	if got := strings.Join(dumpTable(t, inst, "20"), "\n"); !strings.Contains(got, "arp_tpa=10.222.3.1") {
		t.Fatalf("flow installed after reconnect is missing:\n%s", got)
	}
}
