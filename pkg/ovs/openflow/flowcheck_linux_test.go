package openflow

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
)

func ofctl(tb testing.TB, inst *ovstest.Instance, args ...string) string {
	tb.Helper()
	out, err := inst.Ofctl(args...)
	if err != nil {
		tb.Fatalf("ovs-ofctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// allFlows returns every flow of the bridge, sorted, without statistics.
func allFlows(tb testing.TB, inst *ovstest.Instance) []string {
	tb.Helper()
	var lines []string
	for _, l := range strings.Split(ofctl(tb, inst, "dump-flows", "br-int", "--no-stats"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return sorted(lines)
}

// foreignFlows are flows the agent does not own: cookie 0 (added by hand),
// another cookie of round 0, another round, and, in the agent's own
// tables, matches and actions libOpenflow cannot parse (a
// controller(userdata) action makes its parser dereference nil, which
// would kill the agent if the dump read such a flow).
var foreignFlows = []string{
	"table=20,priority=5,udp,actions=drop",
	"cookie=0x1234,table=21,priority=5,icmp6,icmp_type=128,actions=drop",
	"cookie=0x2020000000000,table=20,priority=200,arp,arp_tpa=10.222.9.1,arp_op=1,actions=drop",
	"table=20,priority=7,arp,actions=controller(userdata=01.02)",
	"table=0,priority=6,ip,nw_ecn=1,actions=drop",
	"cookie=0x1000000000000,table=30,priority=1,actions=controller(userdata=03.04)",
}

// ourFlowsToDelete are flows of ours deleted by hand in the tests: two
// responders (ARP and NDP) and two base flows (table 0's miss flow, table
// 22's flow). Key() selects each exactly (with --strict).
var ourFlowsToDelete = []FlowText{
	{Table: ArpResponderTable, Priority: PriorityArpResponder, Match: "arp,arp_tpa=10.222.2.1,arp_op=1"},
	{Table: NdpResponderTable, Priority: PriorityNdpResponder, Match: "icmp6,icmp_type=135,nd_target=fd00:10:222::1"},
	{Table: ClassifierTable, Priority: PriorityMiss},
	{Table: NdpTllTable, Priority: PriorityNdpTll, Match: "icmp6,icmp_type=136"},
}

func setUpDriftBridge(t *testing.T) (*ovstest.Instance, *OFClient) {
	t.Helper()
	inst := startBridge(t)
	c := newTestClient(t, inst)
	if err := c.Initialize(1); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, c, "master", "10.222.0.1", "fd00:10:222::1")
	mustInstall(t, c, "worker2", "10.222.2.1", "fd00:10:222:2::1")
	for _, f := range foreignFlows {
		ofctl(t, inst, "add-flow", "br-int", f)
	}
	return inst, c
}

func mustRepair(t *testing.T, c *OFClient, want int) {
	t.Helper()
	n, err := c.RepairFlows()
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("RepairFlows restored %d flows, want %d", n, want)
	}
}

// TestRepairFlowsOnRealBridge deletes flows of ours by hand next to foreign
// flows: RepairFlows finds nothing to do on the intact bridge, puts exactly
// the deleted flows back, and leaves the foreign ones as they were.
func TestRepairFlowsOnRealBridge(t *testing.T) {
	inst, c := setUpDriftBridge(t)
	before := allFlows(t, inst)
	mustRepair(t, c, 0)
	assertLines(t, allFlows(t, inst), before)

	for _, f := range ourFlowsToDelete {
		ofctl(t, inst, "--strict", "del-flows", "br-int", f.Key())
	}
	if got := allFlows(t, inst); len(got) != len(before)-len(ourFlowsToDelete) {
		t.Fatalf("%d flows after deleting %d of %d:\n%s", len(got), len(ourFlowsToDelete), len(before), strings.Join(got, "\n"))
	}
	mustRepair(t, c, len(ourFlowsToDelete))
	assertLines(t, allFlows(t, inst), before)
	mustRepair(t, c, 0)

	// The documented exception: a flow added by hand with exactly the
	// table, priority and match of one of ours replaces ours, and the
	// repair replaces it back.
	ofctl(t, inst, "add-flow", "br-int", "cookie=0x5,table=20,priority=200,arp,arp_tpa=10.222.0.1,arp_op=1,actions=drop")
	mustRepair(t, c, 1)
	assertLines(t, allFlows(t, inst), before)
}

// TestRepairFlowsLeavesRemovedResponders: a responder the client removed is
// not brought back, and flows of an earlier round do not count as ours.
func TestRepairFlowsLeavesRemovedResponders(t *testing.T) {
	inst, c := setUpDriftBridge(t)
	if err := c.UninstallNodeFlows("worker2"); err != nil {
		t.Fatal(err)
	}
	before := allFlows(t, inst)
	mustRepair(t, c, 0)
	assertLines(t, allFlows(t, inst), before)
	for _, l := range before {
		if strings.Contains(l, "10.222.2.1") || strings.Contains(l, "fd00:10:222:2::1") {
			t.Fatalf("removed responder still on the bridge: %s", l)
		}
	}
}

// TestRunFlowCheckRepairTime measures how long a flow deleted by hand stays
// missing while RunFlowCheck runs with the default period.
func TestRunFlowCheckRepairTime(t *testing.T) {
	inst, c := setUpDriftBridge(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.RunFlowCheck(ctx, DefaultFlowCheckPeriod)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	const bound = 30 * time.Second
	var worst time.Duration
	for _, f := range ourFlowsToDelete {
		ofctl(t, inst, "--strict", "del-flows", "br-int", f.Key())
		start := time.Now()
		for !hasFlow(t, inst, f) {
			if time.Since(start) > bound {
				t.Fatalf("%s not restored within %s", f.Key(), bound)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("%s restored %s after del-flows (check period %s)", f.Key(), took.Round(time.Millisecond), DefaultFlowCheckPeriod)
		if took > worst {
			worst = took
		}
	}
	t.Logf("worst repair time: %s", worst.Round(time.Millisecond))
}

// hasFlow reports whether the bridge holds a flow with the table, priority
// and match of f (ovs-ofctl's dump-flows takes no priority to filter on).
func hasFlow(t *testing.T, inst *ovstest.Instance, f FlowText) bool {
	t.Helper()
	want := matchWithPriority(f.Priority, f.Match) + " actions="
	for _, l := range dumpTable(t, inst, strconv.Itoa(int(f.Table))) {
		// Lines start with the cookie and the table, when not 0.
		if _, rest, ok := strings.Cut(l, "cookie="); ok {
			_, l, _ = strings.Cut(rest, ", ")
		}
		l = strings.TrimPrefix(l, fmt.Sprintf("table=%d, ", f.Table))
		if strings.HasPrefix(l, want) {
			return true
		}
	}
	return false
}

// BenchmarkRepairFlows5000 measures one RepairFlows call (dump of the four
// tables with 5000 responders, 2500 ARP and 2500 NDP, and the comparison)
// when nothing is missing and when one responder was deleted (which adds
// the flowDumpSettle wait), the CPU time it costs the agent and
// ovs-vswitchd, and how long it holds the client's lock. Run it with
//
//	go test ./pkg/ovs/openflow -run '^$' -bench RepairFlows5000 -benchtime 20x
func BenchmarkRepairFlows5000(b *testing.B) {
	inst := startBridge(b)
	c := NewOFClient("br-int", inst.MgmtSock("br-int"), checkMAC)
	b.Cleanup(c.Disconnect)
	if err := c.Initialize(1); err != nil {
		b.Fatal(err)
	}
	var gws []net.IP
	for i := 0; i < 2500; i++ {
		gws = append(gws, net.IPv4(10, byte(100+i/250), byte(i%250), 1),
			net.ParseIP(fmt.Sprintf("fd00:10:%x::1", i+1)))
	}
	if err := c.InstallNodeFlows("many", gws); err != nil {
		b.Fatal(err)
	}
	pid := vswitchdPid(b, inst)

	b.Run("intact", func(b *testing.B) {
		cpu, own := vswitchdCPU(b, pid), ownCPU(b)
		for i := 0; i < b.N; i++ {
			if n, err := c.RepairFlows(); err != nil || n != 0 {
				b.Fatalf("RepairFlows() = %d, %v; want 0, nil", n, err)
			}
		}
		b.ReportMetric(float64((vswitchdCPU(b, pid)-cpu).Milliseconds())/float64(b.N), "vswitchd-cpu-ms/op")
		b.ReportMetric(float64((ownCPU(b)-own).Milliseconds())/float64(b.N), "agent-cpu-ms/op")
	})
	// How long a check holds the client's lock (Node changes wait).
	b.Run("list-wanted", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, wanted, err := c.snapshotWantedFlows(); err != nil || len(wanted) != len(gws)+len(c.pipe.baseFlows()) {
				b.Fatalf("snapshotWantedFlows() = %d flows, %v", len(wanted), err)
			}
		}
	})
	b.Run("one-missing", func(b *testing.B) {
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			gw := gws[i%len(gws)]
			spec := fmt.Sprintf("table=20,priority=200,arp,arp_tpa=%s,arp_op=1", gw)
			if gw.To4() == nil {
				spec = fmt.Sprintf("table=21,priority=200,icmp6,icmp_type=135,nd_target=%s", gw)
			}
			ofctl(b, inst, "--strict", "del-flows", "br-int", spec)
			start := vswitchdCPU(b, pid)
			b.StartTimer()
			if n, err := c.RepairFlows(); err != nil || n != 1 {
				b.Fatalf("RepairFlows() = %d, %v; want 1, nil", n, err)
			}
			cpu += vswitchdCPU(b, pid) - start
		}
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "vswitchd-cpu-ms/op")
	})
}

func vswitchdPid(tb testing.TB, inst *ovstest.Instance) int {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(inst.RunDir, "ovs-vswitchd.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}

// ownCPU returns the user and system CPU time this process used so far:
// the check and libOpenflow's parsing of the replies.
func ownCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vswitchdCPU returns the user and system CPU time ovs-vswitchd used so
// far, from /proc/<pid>/stat (in clock ticks of 10 ms).
func vswitchdCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestFlowCountsOnRealBridge: the aggregate counts that let a check skip
// the dump are those of our round only, per table, and change when a flow
// of ours goes (foreign flows in the same tables do not count).
func TestFlowCountsOnRealBridge(t *testing.T) {
	inst, c := setUpDriftBridge(t)
	c.mu.Lock()
	round, want := c.pipe.round, c.wantedCountsLocked()
	c.mu.Unlock()
	// Base flows plus 2 ARP and 2 NDP responders.
	if want[ArpResponderTable] != 4 || want[NdpResponderTable] != 4 {
		t.Fatalf("wanted counts %v: want 4 in table 20 (2 base flows, 2 responders) and 4 in table 21", want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have, err := c.flowCounts.count(ctx, c.currentSwitch(), round, Tables())
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range want {
		if have[table] != n {
			t.Errorf("table %d: %d flows of round %d on the bridge, want %d", table, have[table], round, n)
		}
	}
	if same, err := c.countsMatch(ctx, c.currentSwitch(), round, want); err != nil || !same {
		t.Fatalf("countsMatch on the intact bridge = %v, %v", same, err)
	}
	ofctl(t, inst, "del-flows", "br-int", "table=21,icmp6,icmp_type=135,nd_target=fd00:10:222::1")
	if same, err := c.countsMatch(ctx, c.currentSwitch(), round, want); err != nil || same {
		t.Fatalf("countsMatch after deleting a responder = %v, %v; want false", same, err)
	}
}
