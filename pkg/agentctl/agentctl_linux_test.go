//go:build linux

package agentctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agent/metrics"
	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/agentctl"
	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
	"github.com/noderoute/noderoute/test/framework/nodesim"
)

// node is worker1 of the three-Node example cluster as the agent sets it up
// (see agent.Run and nodesim): a bridge and routes in a throwaway netns, the
// controller over a fake API server, the local API on a temporary socket and
// the metrics on a free port.
type node struct {
	ovs     *ovstest.Instance
	ctrl    *noderoute.Controller
	socket  string
	metrics string // base URL
	run     func()
}

func setUp(t *testing.T) *node {
	t.Helper()
	return setUpWith(t, nodesim.ClusterNodes())
}

// setUpWith is setUp for other Nodes (worker1 among them).
func setUpWith(t *testing.T, nodes []runtime.Object) *node {
	t.Helper()
	host := nodesim.NewHost(t)
	// A long resync period and no route watcher or flow check, so that
	// drift made by hand stays until check has seen it.
	agent := host.NewAgent(t, fake.NewSimpleClientset(nodes...), time.Hour)
	agent.NoRepair = true

	m := metrics.New()
	msrv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agent.Ctrl.SetObserver(m)
	m.SetSources(metrics.Sources{Stats: agent.Ctrl.Stats, OVSConnected: agent.Flows.Connected, FullSyncDone: agent.Ctrl.FullSyncDone()})

	sock := filepath.Join(t.TempDir(), "agent.sock")
	local := &apiserver.Agent{
		NodeName: nodesim.LocalNode, Version: "test", Bridge: nodesim.Bridge, OVSRunDir: host.OVS.RunDir,
		GatewayInterface: nodesim.GatewayInterface, VirtualMAC: nodesim.VirtualMAC.String(), FlowRound: agent.Round,
		OVSConnected: agent.Flows.Connected, Controller: agent.Ctrl,
	}
	api, err := apiserver.Serve(sock, local.State)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		api.Close()
		msrv.Close()
	})
	return &node{ovs: host.OVS, ctrl: agent.Ctrl, socket: sock, metrics: "http://" + msrv.Addr().String(), run: func() { agent.Run(t) }}
}

// agentctl runs agentctl in-process against the node: its API socket, and
// routes in its netns.
func (n *node) agentctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	full := append([]string{"--api-socket", n.socket, "--netns", n.ovs.NetNSPath()}, args...)
	start := time.Now()
	code := agentctl.Run(context.Background(), full, agentctl.Env{Stdout: &stdout, Stderr: &stderr})
	t.Logf("$ agentctl %s   (exit %d, %s)\n%s%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func gauges(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		if ms := f.GetMetric(); len(ms) == 1 && ms[0].Gauge != nil {
			out[name] = ms[0].GetGauge().GetValue()
		}
	}
	return out
}

func TestAgentctlAgainstRealBridge(t *testing.T) {
	n := setUp(t)
	if code, body := httpGet(t, n.metrics+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the first full sync: %d %q", code, body)
	}
	n.run()
	if code, body := httpGet(t, n.metrics+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after the first full sync: %d %q", code, body)
	}
	if code, body := httpGet(t, n.metrics+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q", code, body)
	}
	g := gauges(t, n.metrics+"/metrics")
	for name, want := range map[string]float64{
		"noderoute_nodes_seen": 3, "noderoute_remote_nodes": 2, "noderoute_flows_installed": 2,
		"noderoute_routes_installed": 2, "noderoute_ovs_connected": 1,
	} {
		if g[name] != want {
			t.Errorf("%s = %v, want %v", name, g[name], want)
		}
	}
	if ts := g["noderoute_last_full_sync_timestamp_seconds"]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last full sync timestamp %v", ts)
	}

	// flows --table 20 --no-stats: a header, then the lines of
	// testdata/seed-table20.txt as ovs-ofctl prints them (with its leading
	// space).
	seed, err := os.ReadFile("../ovs/openflow/testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := n.agentctl(t, "flows", "--table", "20", "--no-stats")
	want := []string{"# table=20 ArpResponder"}
	for _, l := range strings.Split(strings.TrimSpace(string(seed)), "\n") {
		want = append(want, " "+l)
	}
	if code != 0 || errOut != "" || strings.TrimRight(out, "\n") != strings.Join(want, "\n") {
		t.Fatalf("flows --table 20 --no-stats: exit %d, stderr %q\n%s\nwant:\n%s", code, errOut, out, strings.Join(want, "\n"))
	}

	// Make the kernel ARP for worker2's gateway, so its flow counts a
	// packet.
	_, _ = n.ovs.Exec("ping", "-c", "1", "-W", "1", "10.222.2.5")
	code, out, _ = n.agentctl(t, "flows", "--node", "worker2", "-o", "json")
	var res agentctl.FlowsOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("flows --node worker2 -o json: exit %d, %v\n%s", code, err, out)
	}
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows for worker2, want 1", len(res.Flows))
	}
	f := res.Flows[0]
	if f.Node != "worker2" || f.Table != 20 || f.TableName != "ArpResponder" || f.Match != "arp,arp_tpa=10.222.2.1,arp_op=1" ||
		f.Cookie.Raw != "0x1020000000000" || f.Cookie.Round != 1 || f.Cookie.CategoryName != "NodeRoute" ||
		f.Packets == nil || *f.Packets < 1 || res.FlowRound == nil || *res.FlowRound != 1 {
		t.Errorf("worker2's flow: %+v", f)
	}

	n.agentctl(t, "flows")
	code, out, _ = n.agentctl(t, "routes")
	wantRoutes := "DESTINATION     GATEWAY      NODE\n10.222.0.0/24   10.222.0.1   master\n10.222.2.0/24   10.222.2.1   worker2\n"
	if code != 0 || out != wantRoutes {
		t.Errorf("routes: exit %d\n%s\nwant:\n%s", code, out, wantRoutes)
	}

	code, out, _ = n.agentctl(t, "check")
	if code != agentctl.ExitOK || !strings.Contains(out, "OK: no drift") {
		t.Fatalf("check on a clean node: exit %d\n%s", code, out)
	}

	// Drift by hand: worker2's route and master's flow.
	if out, err := n.ovs.Exec("ip", "route", "del", "10.222.2.0/24"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := n.ovs.Ofctl("del-flows", nodesim.Bridge, "table=20,arp,arp_tpa=10.222.0.1,arp_op=1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The non-strict delete took only master's responder.
	if out, _ := n.ovs.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats"); strings.Count(out, "table=20") != 3 {
		t.Fatalf("after del-flows:\n%s", out)
	}
	code, out, _ = n.agentctl(t, "check")
	if code != agentctl.ExitDrift {
		t.Fatalf("check after drift: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"missing flow of node master:\n  cookie=0x1020000000000, table=20, priority=200,arp,arp_tpa=10.222.0.1,arp_op=1 actions=",
		"missing route of node worker2:\n  10.222.2.0/24 via 10.222.2.1 proto 94 onlink",
		"DRIFT: 1 missing flow, 1 missing route",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	code, out, _ = n.agentctl(t, "check", "-o", "json")
	var rep agentctl.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || len(rep.Problems) != 2 {
		t.Errorf("check -o json: exit %d, %v, %+v", code, err, rep)
	}

	// Unreachable agent and OVS: one line naming the path tried.
	code, _, errOut = n.agentctl(t, "--api-socket", "/nonexistent/agent.sock", "check")
	if code != agentctl.ExitError || !strings.Contains(errOut, "/nonexistent/agent.sock") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("check without agent: exit %d, %q", code, errOut)
	}
	code, _, errOut = n.agentctl(t, "flows", "--ovs-rundir", "/nonexistent")
	if code != agentctl.ExitError || !strings.Contains(errOut, "/nonexistent/br-int.mgmt") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("flows without OVS: exit %d, %q", code, errOut)
	}
	n.agentctl(t, "version")
}

// TestAgentctlDualStackAgainstRealBridge: on a dual-stack worker1, agentctl
// maps the NDP responders (table 21) to their Nodes, counts them, and check
// finds one deleted by hand.
func TestAgentctlDualStackAgainstRealBridge(t *testing.T) {
	n := setUpWith(t, nodesim.DualStackClusterNodes())
	n.run()
	g := gauges(t, n.metrics+"/metrics")
	for name, want := range map[string]float64{
		"noderoute_remote_nodes": 2, "noderoute_flows_installed": 4, "noderoute_routes_installed": 4,
	} {
		if g[name] != want {
			t.Errorf("%s = %v, want %v", name, g[name], want)
		}
	}

	// The kernel solicits worker2's IPv6 gateway: its NDP flow counts it.
	_, _ = n.ovs.Exec("ping", "-6", "-c", "1", "-W", "1", "fd00:10:222:2::5")
	code, out, _ := n.agentctl(t, "flows", "--node", "worker2", "-o", "json")
	var res agentctl.FlowsOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("flows --node worker2 -o json: exit %d, %v\n%s", code, err, out)
	}
	if len(res.Flows) != 2 {
		t.Fatalf("%d flows for worker2, want 2", len(res.Flows))
	}
	f := res.Flows[1]
	if f.Node != "worker2" || f.Table != 21 || f.TableName != "NdpResponder" || f.Match != "icmp6,icmp_type=135,nd_target=fd00:10:222:2::1" ||
		f.Cookie.Raw != "0x1030000000000" || f.Cookie.CategoryName != "NodeRouteNDP" || f.Packets == nil || *f.Packets < 1 {
		t.Errorf("worker2's NDP flow: %+v", f)
	}
	code, out, _ = n.agentctl(t, "routes", "--node", "worker2")
	if want := "DESTINATION          GATEWAY            NODE\n10.222.2.0/24        10.222.2.1         worker2\nfd00:10:222:2::/64   fd00:10:222:2::1   worker2\n"; code != 0 || out != want {
		t.Errorf("routes --node worker2: exit %d\n%s\nwant:\n%s", code, out, want)
	}
	n.agentctl(t, "flows", "--no-stats")

	code, out, _ = n.agentctl(t, "check")
	if code != agentctl.ExitOK || !strings.Contains(out, "flows:  13 wanted in tables 0, 20, 21 and 22, 13 on the bridge") {
		t.Fatalf("check on a clean dual-stack node: exit %d\n%s", code, out)
	}
	if out, err := n.ovs.Ofctl("del-flows", nodesim.Bridge, "table=21,icmp6,icmp_type=135,nd_target=fd00:10:222::1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := n.ovs.Exec("ip", "-6", "route", "del", "fd00:10:222:2::/64"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, _ = n.agentctl(t, "check")
	for _, want := range []string{
		"missing flow of node master:\n  cookie=0x1030000000000, table=21, priority=200,icmp6,icmp_type=135,nd_target=fd00:10:222::1 actions=",
		"missing route of node worker2:\n  fd00:10:222:2::/64 via fd00:10:222:2::1 proto 94 onlink",
		"DRIFT: 1 missing flow, 1 missing route",
	} {
		if code != agentctl.ExitDrift || !strings.Contains(out, want) {
			t.Errorf("check after drift: exit %d, output lacks %q", code, want)
		}
	}
}

// TestTraceAgainstRealBridge traces worker1's requests through its real
// bridge with the example cluster's table 20 plus the IPv6 tables: answered
// for worker2's gateways, then the priority-190 NORMAL, the priority-0 drop
// and a missing responder flow named, with the agent and without it.
func TestTraceAgainstRealBridge(t *testing.T) {
	n := setUpWith(t, nodesim.DualStackClusterNodes())
	n.run()
	// Table 20 is testdata/seed-table20.txt (the IPv6 flows are in tables
	// 21 and 22).
	seed, err := os.ReadFile("../ovs/openflow/testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.ovs.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats")
	if err != nil || strings.ReplaceAll(out, "\n ", "\n") != strings.TrimSpace(string(seed)) {
		t.Fatalf("table 20 is not the seed's: %v\n%s\nwant:\n%s", err, out, seed)
	}

	code, out, errOut := n.agentctl(t, "trace", "--node", "worker2", "-o", "json")
	var res agentctl.TraceOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != agentctl.ExitOK || errOut != "" {
		t.Fatalf("trace --node worker2: exit %d, %v, stderr %q\n%s", code, err, errOut, out)
	}
	if len(res.Traces) != 2 || res.GatewayInterface.Name != "antrea-gw0" || res.GatewayInterface.IPv4 != "10.222.1.1" || res.GatewayInterface.IPv6 != "fd00:10:222:1::1" {
		t.Fatalf("%+v", res)
	}
	arp, nd := res.Traces[0], res.Traces[1]
	if !arp.Answered || arp.FinalAction != "IN_PORT" || arp.Reply.Op != "2" || arp.Reply.SHA != "aa:bb:cc:dd:ee:ff" ||
		arp.Reply.EthSrc != "aa:bb:cc:dd:ee:ff" || arp.Reply.SPA != "10.222.2.1" || arp.Reply.EthDst != res.GatewayInterface.MAC ||
		len(arp.Path) != 2 || arp.Path[1].TableName != "ArpResponder" || arp.Path[1].Node != "worker2" || arp.Path[1].Cookie.Raw != "0x1020000000000" {
		t.Errorf("ARP: %+v\n%s", arp, arp.OVSTrace)
	}
	if !nd.Answered || nd.FinalAction != "IN_PORT" || nd.Reply.ICMPv6Type != "136" || nd.Reply.NDTLL != "aa:bb:cc:dd:ee:ff" ||
		nd.Reply.IPv6Src != "fd00:10:222:2::1" || nd.Path[1].Node != "worker2" {
		t.Errorf("NDP: %+v\n%s", nd, nd.OVSTrace)
	}
	if code, out, _ = n.agentctl(t, "trace", "--node", "worker2"); code != agentctl.ExitOK || strings.Count(out, "result:  ANSWERED") != 2 {
		t.Errorf("trace --node worker2 (text): exit %d\n%s", code, out)
	}

	// A gateway no Node has: the priority-190 NORMAL, named.
	code, out, _ = n.agentctl(t, "trace", "10.222.9.1", "fd00:10:222:9::1")
	if code != agentctl.ExitDrift || !strings.Contains(out, "fell through table 20 (ArpResponder) to its priority-190 NORMAL flow") ||
		!strings.Contains(out, "fell through table 21 (NdpResponder) to its priority-190 NORMAL flow") {
		t.Errorf("unknown gateways: exit %d\n%s", code, out)
	}

	// worker2's ARP responder flow deleted by hand: it falls to the
	// NORMAL flow and check's missing flow is shown.
	if out, err := n.ovs.Ofctl("del-flows", nodesim.Bridge, "table=20,arp,arp_tpa=10.222.2.1,arp_op=1"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, _ = n.agentctl(t, "trace", "--node", "worker2")
	if code != agentctl.ExitDrift || !strings.Contains(out, "priority-190 NORMAL flow: no responder flow for 10.222.2.1") ||
		!strings.Contains(out, "missing flow of node worker2:\n    cookie=0x1020000000000, table=20, priority=200,arp,arp_tpa=10.222.2.1,arp_op=1 actions=") ||
		strings.Count(out, "result:  ANSWERED") != 1 {
		t.Errorf("flow missing: exit %d\n%s", code, out)
	}
	// And the fallback gone too: the priority-0 drop, named.
	if out, err := n.ovs.Ofctl("del-flows", "--strict", nodesim.Bridge, "table=20,priority=190,arp"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, _ = n.agentctl(t, "trace", "10.222.2.1", "-o", "json")
	res = agentctl.TraceOutput{}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != agentctl.ExitDrift {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if tr := res.Traces[0]; tr.Outcome != agentctl.OutcomeDropped || tr.FinalAction != "drop" || tr.Path[1].Priority != 0 ||
		!strings.Contains(tr.Summary, "priority-0 drop flow") || tr.Check == nil || len(tr.Check.Problems) != 2 {
		t.Errorf("dropped: %+v\ncheck %+v", tr, tr.Check)
	}

	// Without the agent: the IP form, on the bridge of --ovs-rundir.
	code, out, errOut = n.agentctl(t, "--api-socket", "/nonexistent/agent.sock", "--ovs-rundir", n.ovs.RunDir, "trace", "fd00:10:222:2::1")
	if code != agentctl.ExitOK || !strings.Contains(out, "result:  ANSWERED") || !strings.Contains(errOut, "without Node names") {
		t.Errorf("IP without the agent: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = n.agentctl(t, "--api-socket", "/nonexistent/agent.sock", "trace", "--node", "worker2")
	if code != agentctl.ExitError || !strings.Contains(errOut, "--node needs the agent's local API") {
		t.Errorf("--node without the agent: exit %d %q", code, errOut)
	}
}
