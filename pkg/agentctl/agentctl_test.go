package agentctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/route"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// seedState is what the agent on worker1 of the three-Node example cluster
// reports.
func seedState() *apiserver.State {
	sub := func(cidr, gw string) []apiserver.Subnet { return []apiserver.Subnet{{PodCIDR: cidr, GatewayIP: gw}} }
	return &apiserver.State{
		APIVersion: apiserver.APIVersion, AgentVersion: "v9.9.9 (commit abc)", NodeName: "worker1",
		LocalPodCIDRs: []string{"10.222.1.0/24"}, Bridge: "br-int", OVSRunDir: "/run/test-ovs",
		GatewayInterface: "antrea-gw0", VirtualMAC: "aa:bb:cc:dd:ee:ff", FlowRound: 1,
		OVSConnected: true, FullSyncDone: true,
		RemoteNodes: []apiserver.RemoteNodeState{
			{Name: "master", Desired: sub("10.222.0.0/24", "10.222.0.1"), Installed: sub("10.222.0.0/24", "10.222.0.1")},
			{Name: "worker2", Desired: sub("10.222.2.0/24", "10.222.2.1"), Installed: sub("10.222.2.0/24", "10.222.2.1")},
		},
	}
}

// dualStackState is seedState with an IPv6 pod CIDR on master
// (fd00:10:222::/64) and worker2 (fd00:10:222:2::/64), as on the bridge of
// the golden dumps in ofctl/testdata.
func dualStackState() *apiserver.State {
	st := seedState()
	for i, cidr := range map[int]string{0: "fd00:10:222::/64", 1: "fd00:10:222:2::/64"} {
		s := apiserver.Subnet{PodCIDR: cidr, GatewayIP: strings.TrimSuffix(cidr, "/64") + "1"}
		st.RemoteNodes[i].Desired = append(st.RemoteNodes[i].Desired, s)
		st.RemoteNodes[i].Installed = append(st.RemoteNodes[i].Installed, s)
	}
	return st
}

type fakeAgent struct {
	st  *apiserver.State
	err error
}

func (f fakeAgent) State(context.Context) (*apiserver.State, error) { return f.st, f.err }

// fakeDumper serves the golden dumps of ../ofctl/testdata (real ovs-ofctl
// output), or flows given as --no-stats lines.
type fakeDumper struct {
	lines  []string // when set, the bridge's flows
	err    error
	target ofctl.Target
}

func (f *fakeDumper) DumpFlows(_ context.Context, t ofctl.Target, opts ofctl.DumpOptions) ([]ofctl.Flow, error) {
	f.target = t
	if f.err != nil {
		return nil, f.err
	}
	var text string
	if f.lines != nil {
		text = " " + strings.Join(f.lines, "\n ")
	} else {
		name := "dump-stats.txt"
		if opts.NoStats {
			name = "dump-nostats.txt"
		}
		b, err := os.ReadFile(filepath.Join("ofctl", "testdata", name))
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	flows, err := ofctl.Parse(text)
	if err != nil {
		return nil, err
	}
	var out []ofctl.Flow
	for _, fl := range flows {
		if opts.Table == ofctl.AllTables || int(fl.Table) == opts.Table {
			out = append(out, fl)
		}
	}
	return out, nil
}

type fakeRoutes struct {
	routes []route.Route
	err    error
}

func (f fakeRoutes) ListRoutes() ([]route.Route, error) { return f.routes, f.err }

func seedRoutes() []route.Route {
	return []route.Route{mkRoute("10.222.2.0/24", "10.222.2.1"), mkRoute("10.222.0.0/24", "10.222.0.1")}
}

func mkRoute(dst, gw string) route.Route {
	_, n, _ := net.ParseCIDR(dst)
	return route.Route{Dst: n, Gateway: net.ParseIP(gw)}
}

type harness struct {
	agent  fakeAgent
	dumper *fakeDumper
	routes fakeRoutes
	netns  string
	// tracer and gateway serve agentctl trace.
	tracer  *fakeTracer
	gateway *GatewayInterface
}

func newHarness() *harness {
	return &harness{agent: fakeAgent{st: seedState()}, dumper: &fakeDumper{}, routes: fakeRoutes{routes: seedRoutes()}}
}

func (h *harness) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdout: &out, Stderr: &errOut, Flows: h.dumper,
		Routes: func(ns string) (RouteLister, func(), error) {
			h.netns = ns
			return h.routes, func() {}, nil
		},
		Agent:  func(string, time.Duration) AgentClient { return h.agent },
		Tracer: h.tracer,
		Gateway: func(ns, name string) (*GatewayInterface, error) {
			h.netns = ns
			if h.gateway == nil || h.gateway.Name != name {
				return nil, errors.New("gateway interface " + name + ": Link not found")
			}
			return h.gateway, nil
		},
	}
	code = Run(context.Background(), args, env)
	return code, out.String(), errOut.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestFlowsTextIsOvsOfctlUnderTableHeaders(t *testing.T) {
	h := newHarness()
	code, out, errOut := h.run(t, "flows", "--table", "20", "--no-stats")
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	golden, _ := os.ReadFile("ofctl/testdata/dump-table20.txt")
	if want := "# table=20 ArpResponder\n" + string(golden); out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if h.dumper.target != (ofctl.Target{RunDir: "/run/test-ovs", Bridge: "br-int"}) {
		t.Errorf("dumped %+v, want the agent's bridge and run dir", h.dumper.target)
	}
	// By name, case-insensitively: the same output.
	if _, byName, _ := h.run(t, "flows", "--table", "arpresponder", "--no-stats"); byName != out {
		t.Errorf("--table arpresponder differs from --table 20:\n%s", byName)
	}

	code, out, _ = h.run(t, "flows")
	if code != ExitOK {
		t.Fatal(code)
	}
	checkGolden(t, "flows-all.txt.golden", out)
	var headers []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") {
			headers = append(headers, l)
		}
	}
	if want := []string{"# table=0 Classifier", "# table=7", "# table=20 ArpResponder", "# table=21 NdpResponder", "# table=22 NdpResponderTll"}; !reflect.DeepEqual(headers, want) {
		t.Errorf("headers %v, want %v", headers, want)
	}
}

func TestFlowsNodeFilterAndJSONShape(t *testing.T) {
	h := newHarness()
	h.agent.st = dualStackState()
	code, out, errOut := h.run(t, "flows", "--node", "worker2", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkGolden(t, "flows-node-worker2.json.golden", out)
	var res map[string]interface{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	flows := res["flows"].([]interface{})
	if len(flows) != 2 {
		t.Fatalf("%d flows for worker2, want 2 (ARP and NDP responder):\n%s", len(flows), out)
	}
	f := flows[0].(map[string]interface{})
	want := map[string]interface{}{
		"table": 20.0, "tableName": "ArpResponder", "priority": 200.0, "match": "arp,arp_tpa=10.222.2.1,arp_op=1",
		"node": "worker2", "packets": 1.0, "bytes": 42.0,
		"cookie": map[string]interface{}{"raw": "0x1020000000000", "round": 1.0, "category": 2.0, "categoryName": "NodeRoute", "object": 0.0},
	}
	for k, v := range want {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	if !strings.HasPrefix(f["actions"].(string), "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:aa:bb:cc:dd:ee:ff") {
		t.Errorf("actions = %v", f["actions"])
	}
	if _, ok := f["durationSeconds"]; !ok {
		t.Error("durationSeconds missing with stats")
	}
	// The NDP responder, found by its nd_target.
	f = flows[1].(map[string]interface{})
	want = map[string]interface{}{
		"table": 21.0, "tableName": "NdpResponder", "priority": 200.0, "match": "icmp6,icmp_type=135,nd_target=fd00:10:222:2::1",
		"node": "worker2", "packets": 1.0, "bytes": 86.0,
		"cookie": map[string]interface{}{"raw": "0x1030000000000", "round": 1.0, "category": 3.0, "categoryName": "NodeRouteNDP", "object": 0.0},
	}
	for k, v := range want {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("NDP flow: %s = %#v, want %#v", k, f[k], v)
		}
	}
	if res["bridge"] != "br-int" || res["flowRound"] != 1.0 {
		t.Errorf("bridge %v, flowRound %v", res["bridge"], res["flowRound"])
	}

	// --no-stats leaves the counters out; YAML has the same fields.
	_, out, _ = h.run(t, "flows", "--node", "master", "--no-stats", "-o", "yaml")
	var y FlowsOutput
	if err := yaml.UnmarshalStrict([]byte(out), &y); err != nil {
		t.Fatalf("YAML: %v\n%s", err, out)
	}
	if len(y.Flows) != 2 || y.Flows[0].Node != "master" || y.Flows[1].Node != "master" || y.Flows[0].Packets != nil || y.Flows[0].Cookie.Round != 1 {
		t.Errorf("YAML flows of master: %+v", y.Flows)
	}

	// Text with --node: the node's flows under their tables' headers.
	_, out, _ = h.run(t, "flows", "--node", "worker2", "--no-stats")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != "# table=20 ArpResponder" || !strings.Contains(lines[1], "arp_tpa=10.222.2.1,") ||
		lines[2] != "# table=21 NdpResponder" || !strings.Contains(lines[3], "nd_target=fd00:10:222:2::1 ") {
		t.Errorf("text --node worker2:\n%s", out)
	}
	// --table and --node together.
	_, out, _ = h.run(t, "flows", "--node", "worker2", "--table", "NdpResponder", "--no-stats")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || lines[0] != "# table=21 NdpResponder" {
		t.Errorf("--node worker2 --table NdpResponder:\n%s", out)
	}

	// An IPv4-only agent maps no NDP flow to worker2.
	h.agent.st = seedState()
	_, out, _ = h.run(t, "flows", "--node", "worker2", "--no-stats")
	if strings.Contains(out, "nd_target") {
		t.Errorf("IPv4-only state, --node worker2 shows an NDP flow:\n%s", out)
	}
	h.agent.st = dualStackState()

	// All flows in JSON: Node names only on the ARP responders; the
	// hand-added flow (cookie 0) belongs to nobody.
	_, out, _ = h.run(t, "flows", "-o", "json", "--no-stats")
	var all FlowsOutput
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, f := range all.Flows {
		nodes[f.Match] = f.Node
	}
	if nodes["arp,arp_tpa=10.222.0.1,arp_op=1"] != "master" || nodes["icmp6,icmp_type=135,nd_target=fd00:10:222::1"] != "master" ||
		nodes["udp"] != "" || nodes["arp"] != "" || nodes["icmp6,icmp_type=136"] != "" {
		t.Errorf("node mapping: %v", nodes)
	}
}

func TestFlowsErrors(t *testing.T) {
	h := newHarness()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"flows", "--node", "worker9"}, `knows no remote Node "worker9" (remote Nodes: master, worker2)`},
		{[]string{"flows", "--node", "worker1"}, "worker1 is the node the agent runs on"},
		{[]string{"flows", "--table", "nope"}, `--table "nope": not a table number`},
		{[]string{"flows", "--table", "255"}, "tables are 0 to 254"},
		{[]string{"flows", "-o", "xml"}, `unknown output format "xml"`},
		{[]string{"flows", "extra"}, `unexpected argument "extra"`},
		{[]string{"flows", "--bogus"}, "flag provided but not defined: -bogus"},
	} {
		code, out, errOut := h.run(t, tc.args...)
		if code != ExitError || out != "" || !strings.Contains(errOut, tc.msg) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", tc.args, code, out, errOut, tc.msg)
		}
	}

	// OVS unreachable: the error names the socket.
	h.dumper.err = errors.New("no OpenFlow management socket at /run/test-ovs/br-int.mgmt (no such file or directory): is ovs-vswitchd running with this run directory, and does bridge br-int exist?")
	code, _, errOut := h.run(t, "flows")
	if code != ExitError || !strings.Contains(errOut, "/run/test-ovs/br-int.mgmt") || strings.Contains(errOut, "goroutine") {
		t.Errorf("OVS down: exit %d, %q", code, errOut)
	}
}

func TestWithoutTheAgent(t *testing.T) {
	h := newHarness()
	h.agent = fakeAgent{err: &apiserver.UnreachableError{Socket: "/x/agent.sock", Err: errors.New("dial unix /x/agent.sock: connect: no such file or directory")}}

	// flows still works, on the default bridge, with a warning.
	code, out, errOut := h.run(t, "flows", "--table", "20", "--no-stats")
	if code != ExitOK || !strings.HasPrefix(out, "# table=20 ArpResponder\n") {
		t.Errorf("flows without agent: exit %d\n%s", code, out)
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "/x/agent.sock") || !strings.Contains(errOut, "bridge br-int in /var/run/openvswitch") {
		t.Errorf("warning: %q", errOut)
	}
	if h.dumper.target != (ofctl.Target{RunDir: DefaultOVSRunDir, Bridge: DefaultBridge}) {
		t.Errorf("target %+v", h.dumper.target)
	}
	// Flags override the defaults.
	h.run(t, "--bridge", "br-x", "flows", "--ovs-rundir", "/run/o")
	if h.dumper.target != (ofctl.Target{RunDir: "/run/o", Bridge: "br-x"}) {
		t.Errorf("target with flags %+v", h.dumper.target)
	}

	// routes shows '?' for the Node.
	code, out, _ = h.run(t, "routes")
	if code != ExitOK || !strings.Contains(out, "10.222.0.0/24   10.222.0.1   ?") {
		t.Errorf("routes without agent: %d\n%s", code, out)
	}

	// --node and check need the agent.
	for _, args := range [][]string{{"flows", "--node", "worker2"}, {"routes", "--node", "worker2"}, {"check"}} {
		code, out, errOut := h.run(t, args...)
		if code != ExitError || out != "" || !strings.Contains(errOut, "/x/agent.sock") || !strings.Contains(errOut, "--api-socket") {
			t.Errorf("%v without agent: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// version still answers.
	code, out, _ = h.run(t, "version")
	if code != ExitOK || !strings.Contains(out, "agentctl: ") || !strings.Contains(out, "agent:    unknown") {
		t.Errorf("version without agent: %d %q", code, out)
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness()
	h.routes.routes = append(h.routes.routes, mkRoute("10.99.0.0/16", "10.99.0.1"), mkRoute("fd00:10:222:2::/64", "fd00:10:222:2::1"))
	h.agent.st.RemoteNodes[1].Desired = append(h.agent.st.RemoteNodes[1].Desired, apiserver.Subnet{PodCIDR: "fd00:10:222:2::/64", GatewayIP: "fd00:10:222:2::1"})
	code, out, _ := h.run(t, "--netns", "/var/run/netns/x", "routes")
	want := "DESTINATION          GATEWAY            NODE\n" +
		"10.99.0.0/16         10.99.0.1          -\n" +
		"10.222.0.0/24        10.222.0.1         master\n" +
		"10.222.2.0/24        10.222.2.1         worker2\n" +
		"fd00:10:222:2::/64   fd00:10:222:2::1   worker2\n"
	if code != ExitOK || out != want {
		t.Errorf("exit %d:\n%s\nwant:\n%s", code, out, want)
	}
	if h.netns != "/var/run/netns/x" {
		t.Errorf("routes read in %q", h.netns)
	}
	_, out, _ = h.run(t, "routes", "--node", "worker2", "-o", "json")
	var res RoutesOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	wantRes := RoutesOutput{Protocol: 94, Routes: []RouteInfo{
		{Destination: "10.222.2.0/24", Gateway: "10.222.2.1", Node: "worker2"},
		{Destination: "fd00:10:222:2::/64", Gateway: "fd00:10:222:2::1", Node: "worker2"},
	}}
	if !reflect.DeepEqual(res, wantRes) {
		t.Errorf("JSON %+v, want %+v", res, wantRes)
	}
	h.routes.err = errors.New("netlink: operation not permitted")
	code, _, errOut := h.run(t, "--netns", "/var/run/netns/x", "routes")
	if code != ExitError || !strings.Contains(errOut, "network namespace /var/run/netns/x: netlink: operation not permitted") {
		t.Errorf("netlink failure: %d %q", code, errOut)
	}
}

func TestHelpVersionAndUsage(t *testing.T) {
	h := newHarness()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := h.run(t, args...)
		if code != ExitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "agentctl flows --node worker2 -o json") || !strings.Contains(out, "-api-socket") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	for _, args := range [][]string{{"flows", "--help"}, {"help", "flows"}} {
		code, out, _ := h.run(t, args...)
		if code != ExitOK || !strings.Contains(out, "# table=<id> <name>") || !strings.Contains(out, "-no-stats") || !strings.Contains(out, "-netns") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	if code, _, errOut := h.run(t); code != ExitError || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no command: %d %q", code, errOut)
	}
	if code, _, errOut := h.run(t, "dance"); code != ExitError || !strings.Contains(errOut, `unknown command "dance"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	code, out, _ := h.run(t, "version")
	if code != ExitOK || !strings.Contains(out, "agent:    v9.9.9 (commit abc) on node worker1") {
		t.Errorf("version: %d %q", code, out)
	}
}
