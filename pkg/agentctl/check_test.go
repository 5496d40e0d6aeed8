package agentctl

import (
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

// seedFlows are worker1's tables 0, 20, 21 and 22 for round 1 on the
// (IPv4) three-Node example cluster, as ovs-ofctl prints them with
// --no-stats: table 20 is testdata/seed-table20.txt, tables 21 and 22 hold
// only their base flows.
func seedFlows(t *testing.T) []string {
	t.Helper()
	flows := []string{
		"cookie=0x1000000000000, priority=200,arp actions=resubmit(,20)",
		"cookie=0x1000000000000, priority=200,icmp6,icmp_type=135 actions=resubmit(,21)",
		"cookie=0x1000000000000, priority=0 actions=NORMAL",
	}
	for _, f := range mustParseFile(t, "../ovs/openflow/testdata/seed-table20.txt") {
		flows = append(flows, f.Line)
	}
	for _, f := range mustParseFile(t, "../ovs/openflow/testdata/ndp-tables.txt") {
		if _, ok := f.MatchField("nd_target"); !ok {
			flows = append(flows, f.Line)
		}
	}
	return flows
}

// dualStackFlows are seedFlows plus the NDP responders of dualStackState:
// master's fd00:10:222::1 and worker2's fd00:10:222:2::1.
func dualStackFlows(t *testing.T) []string {
	t.Helper()
	flows := seedFlows(t)
	for _, f := range mustParseFile(t, "../ovs/openflow/testdata/ndp-tables.txt") {
		if _, ok := f.MatchField("nd_target"); ok {
			flows = append(flows, f.Line)
		}
	}
	return flows
}

func dualStackRoutes() []route.Route {
	return append(seedRoutes(), mkRoute("fd00:10:222::/64", "fd00:10:222::1"), mkRoute("fd00:10:222:2::/64", "fd00:10:222:2::1"))
}

func mustParseFile(t *testing.T, path string) []ofctl.Flow {
	t.Helper()
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flows, err := ofctl.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

func parseLines(t *testing.T, lines []string) []ofctl.Flow {
	t.Helper()
	flows, err := ofctl.Parse(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

func without(lines []string, substr string) []string {
	var out []string
	for _, l := range lines {
		if !strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func TestDiffCleanSeed(t *testing.T) {
	rep, err := Diff(seedState(), parseLines(t, seedFlows(t)), seedRoutes())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean || len(rep.Problems) != 0 || rep.FlowsWanted != 11 || rep.FlowsFound != 11 || rep.RoutesWanted != 2 || rep.RoutesFound != 2 {
		t.Errorf("seed not clean: %+v", rep)
	}
	// Flows of other tables are not the agent's business.
	lines := append(seedFlows(t), "table=7, priority=5,ip actions=drop")
	if rep, _ := Diff(seedState(), parseLines(t, lines), seedRoutes()); !rep.Clean {
		t.Errorf("a flow in table 7 made drift: %+v", rep.Problems)
	}
}

func TestDiffCleanDualStack(t *testing.T) {
	rep, err := Diff(dualStackState(), parseLines(t, dualStackFlows(t)), dualStackRoutes())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean || rep.FlowsWanted != 13 || rep.FlowsFound != 13 || rep.RoutesWanted != 4 || rep.RoutesFound != 4 {
		t.Errorf("dual-stack seed not clean: %+v", rep)
	}

	// worker2's NDP responder deleted by hand, an NDP responder of an
	// earlier round left for a Node deleted since, one of the current
	// round that no Node wants, and master's IPv6 route gone.
	lines := without(dualStackFlows(t), "nd_target=fd00:10:222:2::1 ")
	lines = append(lines,
		"cookie=0x3030000000000, table=21, priority=200,icmp6,icmp_type=135,nd_target=fd00:7::1 actions=drop",
		"cookie=0x1030000000000, table=21, priority=200,icmp6,icmp_type=135,nd_target=fd00:8::1 actions=drop",
	)
	routes := without(routeStrings(dualStackRoutes()), "fd00:10:222::/64")
	rep, err = Diff(dualStackState(), parseLines(t, lines), parseRoutes(routes))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Problem+" "+p.Kind+" "+p.Node+": "+p.Want+" | "+p.Have+" | "+p.Note)
	}
	want := []string{
		"missing flow worker2: " + mustExpected(t, "fd00:10:222:2::1") + " |  | ",
		"unexpected flow :  | cookie=0x3030000000000, table=21, priority=200,icmp6,icmp_type=135,nd_target=fd00:7::1 actions=drop | round 3, the agent is at round 1: left by an earlier run",
		"unexpected flow :  | cookie=0x1030000000000, table=21, priority=200,icmp6,icmp_type=135,nd_target=fd00:8::1 actions=drop | the agent's round, but no Node wants this gateway",
		"missing route master: fd00:10:222::/64 via fd00:10:222::1 proto 94 onlink |  | ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func routeStrings(routes []route.Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, r.Dst.String()+" "+r.Gateway.String())
	}
	return out
}

func parseRoutes(lines []string) []route.Route {
	var out []route.Route
	for _, l := range lines {
		dst, gw, _ := strings.Cut(l, " ")
		out = append(out, mkRoute(dst, gw))
	}
	return out
}

func TestDiffFindsEveryKindOfDrift(t *testing.T) {
	st := seedState()
	// worker2 also has an IPv6 CIDR: a route and an NDP responder.
	st.RemoteNodes[1].Desired = append(st.RemoteNodes[1].Desired, apiserver.Subnet{PodCIDR: "fd00:2::/64", GatewayIP: "fd00:2::1"})
	lines := without(seedFlows(t), "arp_tpa=10.222.0.1,")
	lines = append(lines,
		// Hand-added, cookie 0.
		"table=20, priority=5,udp actions=drop",
		// Left by round 3's agent for a Node deleted since.
		"cookie=0x3020000000000, table=20, priority=200,arp,arp_tpa=10.222.7.1,arp_op=1 actions=drop",
	)
	// worker2's flow from an earlier round with other actions.
	worker2Flow := ""
	for i, l := range lines {
		if strings.Contains(l, "arp_tpa=10.222.2.1,") {
			lines[i] = strings.Replace(strings.Replace(l, "cookie=0x1020000000000", "cookie=0x3020000000000", 1), "IN_PORT", "drop", 1)
			worker2Flow = lines[i]
		}
	}
	routes := []route.Route{
		mkRoute("10.222.2.0/24", "10.222.9.1"), // wrong gateway
		mkRoute("10.99.0.0/16", "10.99.0.1"),   // nobody's
		// master's route missing, worker2's IPv6 route missing
	}
	rep, err := Diff(st, parseLines(t, lines), routes)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean {
		t.Fatal("drift not found")
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.Problem+" "+p.Kind+" "+p.Node+": "+p.Want+" | "+p.Have+" | "+p.Note)
	}
	want := []string{
		"missing flow master: " + mustExpected(t, "10.222.0.1") + " |  | ",
		"changed flow worker2: " + mustExpected(t, "10.222.2.1") + " | " + worker2Flow + " | cookie of round 3, the agent is at round 1; other actions",
		"unexpected flow :  | cookie=0x3020000000000, table=20, priority=200,arp,arp_tpa=10.222.7.1,arp_op=1 actions=drop | round 3, the agent is at round 1: left by an earlier run",
		"unexpected flow :  | table=20, priority=5,udp actions=drop | cookie 0: not the agent's, added by hand?",
		"missing flow worker2: " + mustExpected(t, "fd00:2::1") + " |  | ",
		"unexpected route :  | 10.99.0.0/16 via 10.99.0.1 proto 94 onlink | no Node has this pod CIDR",
		"missing route master: 10.222.0.0/24 via 10.222.0.1 proto 94 onlink |  | ",
		"changed route worker2: 10.222.2.0/24 via 10.222.2.1 proto 94 onlink | 10.222.2.0/24 via 10.222.9.1 proto 94 onlink | ",
		"missing route worker2: fd00:2::/64 via fd00:2::1 proto 94 onlink |  | ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.FlowsWanted != 12 || rep.FlowsFound != 12 || rep.RoutesWanted != 3 || rep.RoutesFound != 2 {
		t.Errorf("counts %+v", rep)
	}
}

func mustExpected(t *testing.T, gw string) string {
	t.Helper()
	f, err := openflow.ExpectedResponderFlow(1, seedMAC(), parseIP(gw))
	if err != nil {
		t.Fatal(err)
	}
	return f.String()
}

// The check command: exit codes, text and JSON reports.
func TestCheckCommand(t *testing.T) {
	h := newHarness()
	h.dumper.lines = seedFlows(t)
	code, out, errOut := h.run(t, "check")
	if code != ExitOK || errOut != "" {
		t.Fatalf("clean seed: exit %d, stderr %q\n%s", code, errOut, out)
	}
	wantClean := "node worker1, bridge br-int, flow round 1, first full sync done\n" +
		"flows:  11 wanted in tables 0, 20, 21 and 22, 11 on the bridge\n" +
		"routes: 2 wanted, 2 with protocol 94\n" +
		"OK: no drift\n"
	if out != wantClean {
		t.Errorf("clean report:\n%s\nwant:\n%s", out, wantClean)
	}

	h.dumper.lines = without(seedFlows(t), "arp_tpa=10.222.0.1,")
	h.routes.routes = []route.Route{mkRoute("10.222.2.0/24", "10.222.2.1")} // master's is gone
	code, out, _ = h.run(t, "check")
	if code != ExitDrift {
		t.Fatalf("drift: exit %d\n%s", code, out)
	}
	checkGolden(t, "check-drift.txt.golden", out)
	for _, want := range []string{"missing flow of node master:", "arp_tpa=10.222.0.1,arp_op=1", "missing route of node master:\n  10.222.0.0/24 via 10.222.0.1 proto 94 onlink", "DRIFT: 1 missing flow, 1 missing route"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = h.run(t, "check", "-o", "json")
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if code != ExitDrift || rep.Clean || len(rep.Problems) != 2 || rep.Problems[0].Node != "master" || rep.Problems[1].Kind != KindRoute {
		t.Errorf("JSON report: exit %d %+v", code, rep)
	}

	h.agent.st.FullSyncDone = false
	h.agent.st.OVSConnected = false
	_, out, _ = h.run(t, "check")
	if !strings.Contains(out, "first full sync NOT done") || !strings.Contains(out, "not connected to OVS") {
		t.Errorf("state notes missing:\n%s", out)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func seedMAC() net.HardwareAddr {
	mac, _ := net.ParseMAC("aa:bb:cc:dd:ee:ff")
	return mac
}

func parseIP(s string) net.IP { return net.ParseIP(s) }
