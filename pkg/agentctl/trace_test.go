package agentctl

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
)

// fakeTracer answers with the golden traces of ../ofctl/testdata (real
// ovs-appctl output of worker1's bridge), by the request's target.
type fakeTracer struct {
	// files maps a target IP to a trace file.
	files    map[string]string
	requests []string
	target   ofctl.Target
	err      error
}

func (f *fakeTracer) Trace(_ context.Context, t ofctl.Target, flow string) (string, error) {
	f.target = t
	f.requests = append(f.requests, flow)
	if f.err != nil {
		return "", f.err
	}
	for ip, file := range f.files {
		if strings.HasSuffix(flow, ",arp_tpa="+ip) || strings.Contains(flow, ",nd_target="+ip+",") {
			b, err := os.ReadFile(filepath.Join("ofctl", "testdata", file))
			return string(b), err
		}
	}
	return "", errors.New("fakeTracer: no trace for " + flow)
}

// worker1Gateway is antrea-gw0 of the golden traces.
func worker1Gateway() *GatewayInterface {
	return &GatewayInterface{Name: "antrea-gw0", MAC: "02:00:00:00:00:01", IPv4: "10.222.1.1", IPv6: "fd00:10:222:1::1"}
}

func traceHarness(files map[string]string) *harness {
	h := newHarness()
	h.agent.st = dualStackState()
	h.tracer = &fakeTracer{files: files}
	h.gateway = worker1Gateway()
	return h
}

func TestTraceNodeAnsweredBothFamilies(t *testing.T) {
	h := traceHarness(map[string]string{"10.222.2.1": "trace-arp-answered.txt", "fd00:10:222:2::1": "trace-ndp-answered.txt"})
	code, out, errOut := h.run(t, "trace", "--node", "worker2")
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	checkGolden(t, "trace-node-worker2.txt.golden", out)
	wantReq := []string{
		"in_port=antrea-gw0,arp,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_sha=02:00:00:00:00:01,arp_spa=10.222.1.1,arp_tha=00:00:00:00:00:00,arp_tpa=10.222.2.1",
		"in_port=antrea-gw0,icmp6,dl_src=02:00:00:00:00:01,dl_dst=33:33:ff:00:00:01,ipv6_src=fd00:10:222:1::1,ipv6_dst=ff02::1:ff00:1,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=fd00:10:222:2::1,nd_sll=02:00:00:00:00:01",
	}
	if strings.Join(h.tracer.requests, "\n") != strings.Join(wantReq, "\n") {
		t.Errorf("requests:\n%s", strings.Join(h.tracer.requests, "\n"))
	}
	if h.tracer.target != (ofctl.Target{RunDir: "/run/test-ovs", Bridge: "br-int"}) {
		t.Errorf("target %+v", h.tracer.target)
	}

	code, out, _ = h.run(t, "trace", "--node", "worker2", "-o", "json")
	var res TraceOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitOK {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if len(res.Traces) != 2 || res.LocalNode != "worker1" || res.VirtualMAC != "aa:bb:cc:dd:ee:ff" {
		t.Fatalf("%+v", res)
	}
	arp := res.Traces[0]
	if !arp.Answered || arp.Outcome != OutcomeAnswered || arp.Node != "worker2" || arp.Family != "IPv4" ||
		arp.FinalAction != "IN_PORT" || arp.Check != nil {
		t.Errorf("ARP trace: %+v", arp)
	}
	if len(arp.Path) != 2 || arp.Path[0].TableName != "Classifier" || arp.Path[1].TableName != "ArpResponder" ||
		arp.Path[1].Node != "worker2" || arp.Path[1].Cookie.Round != 1 || arp.Path[1].Cookie.CategoryName != "NodeRoute" || arp.Path[1].Priority != 200 {
		t.Errorf("ARP path: %+v", arp.Path)
	}
	if r := arp.Reply; r == nil || r.Op != "2" || r.EthSrc != "aa:bb:cc:dd:ee:ff" || r.SHA != "aa:bb:cc:dd:ee:ff" || r.SPA != "10.222.2.1" ||
		r.TPA != "10.222.1.1" || r.THA != "02:00:00:00:00:01" || r.EthDst != "02:00:00:00:00:01" {
		t.Errorf("ARP reply: %+v", arp.Reply)
	}
	nd := res.Traces[1]
	if !nd.Answered || nd.Family != "IPv6" || len(nd.Path) != 3 || nd.Path[1].TableName != "NdpResponder" || nd.Path[1].Node != "worker2" ||
		nd.Path[2].TableName != "NdpResponderTll" || nd.Reply == nil || nd.Reply.ICMPv6Type != "136" || nd.Reply.NDTLL != "aa:bb:cc:dd:ee:ff" ||
		nd.Reply.IPv6Src != "fd00:10:222:2::1" || !strings.Contains(nd.OVSTrace, "bridge(\"br-int\")") {
		t.Errorf("NDP trace: %+v", nd)
	}
}

func TestTraceNotAnswered(t *testing.T) {
	// A gateway no Node has: the priority-190 NORMAL, and check has
	// nothing to say.
	h := traceHarness(map[string]string{"10.222.9.1": "trace-arp-normal.txt"})
	code, out, _ := h.run(t, "trace", "10.222.9.1")
	if code != ExitDrift || !strings.Contains(out, "NOT ANSWERED: fell through table 20 (ArpResponder) to its priority-190 NORMAL flow") ||
		!strings.Contains(out, "check:   no remote Node the agent knows has gateway 10.222.9.1") {
		t.Errorf("unknown gateway: exit %d\n%s", code, out)
	}
	checkGolden(t, "trace-unknown-gateway.txt.golden", out)

	// worker2's responder flow is missing (the trace falls to the drop):
	// check's missing flow is shown.
	h = traceHarness(map[string]string{"10.222.2.1": "trace-arp-drop.txt"})
	h.dumper.lines = without(dualStackFlows(t), "arp_tpa=10.222.2.1")
	h.routes.routes = dualStackRoutes()
	code, out, _ = h.run(t, "trace", "10.222.2.1", "-o", "json")
	var res TraceOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitDrift || len(res.Traces) != 1 {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	tr := res.Traces[0]
	if tr.Answered || tr.Outcome != OutcomeDropped || tr.Node != "worker2" || !strings.Contains(tr.Summary, "priority-0 drop flow") ||
		tr.Check == nil || !tr.Check.Available || len(tr.Check.Problems) != 1 || tr.Check.Problems[0].Problem != Missing ||
		!strings.Contains(tr.Check.Problems[0].Want, "arp_tpa=10.222.2.1") {
		t.Errorf("missing flow: %+v\ncheck: %+v", tr, tr.Check)
	}
	code, out, _ = h.run(t, "trace", "10.222.2.1")
	if code != ExitDrift || !strings.Contains(out, "missing flow of node worker2:") {
		t.Errorf("missing flow, text: exit %d\n%s", code, out)
	}

	// An empty table: "no flow matched".
	h = traceHarness(map[string]string{"10.222.9.1": "trace-arp-nomatch.txt"})
	code, out, _ = h.run(t, "trace", "10.222.9.1")
	if code != ExitDrift || !strings.Contains(out, "table 20 ArpResponder: no flow matched") || !strings.Contains(out, "NOT ANSWERED: no flow of table 20 (ArpResponder) matched") {
		t.Errorf("no match: exit %d\n%s", code, out)
	}
}

func TestTraceWithoutTheAgent(t *testing.T) {
	h := traceHarness(map[string]string{"10.222.2.1": "trace-arp-answered.txt", "fd00:10:222:9::1": "trace-ndp-normal.txt"})
	h.agent = fakeAgent{err: errors.New("agent down")}
	code, out, errOut := h.run(t, "trace", "--node", "worker2")
	if code != ExitError || !strings.Contains(errOut, "--node needs the agent's local API") || !strings.Contains(errOut, "agentctl trace 10.222.2.1") {
		t.Errorf("--node without agent: exit %d %q", code, errOut)
	}
	// The IP form works, on the default bridge and run directory; the
	// Node is not named.
	code, out, errOut = h.run(t, "--netns", "/var/run/netns/w1", "trace", "10.222.2.1")
	if code != ExitOK || !strings.Contains(errOut, "without Node names") || !strings.Contains(out, "ANSWERED: answered by the priority-200 flow of table 20 (ArpResponder)") ||
		h.tracer.target != (ofctl.Target{RunDir: DefaultOVSRunDir, Bridge: DefaultBridge}) || h.netns != "/var/run/netns/w1" {
		t.Errorf("IP without agent: exit %d, target %+v, netns %q\n%s%s", code, h.tracer.target, h.netns, out, errOut)
	}
	code, out, _ = h.run(t, "trace", "fd00:10:222:9::1")
	if code != ExitDrift || !strings.Contains(out, "check:   agentctl check needs the agent's local API: agent down") {
		t.Errorf("unanswered without agent: exit %d\n%s", code, out)
	}
}

func TestTraceErrors(t *testing.T) {
	h := traceHarness(nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace"}, "give either --node NAME or gateway IPs"},
		{[]string{"trace", "--node", "worker2", "10.222.2.1"}, "give either --node NAME or gateway IPs"},
		{[]string{"trace", "nope"}, `"nope" is not an IP address`},
		{[]string{"trace", "--node", "worker9"}, `knows no remote Node "worker9"`},
		{[]string{"trace", "--node", "worker1"}, "worker1 is the node the agent runs on"},
		{[]string{"trace", "--gateway-interface", "eth9", "10.222.2.1"}, "gateway interface eth9: Link not found"},
		{[]string{"flows", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, errOut := h.run(t, tc.args...)
		if code != ExitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	h.gateway.IPv6 = ""
	h.tracer.files = map[string]string{"10.222.2.1": "trace-arp-answered.txt"}
	if code, _, errOut := h.run(t, "trace", "fd00:10:222:2::1"); code != ExitError || !strings.Contains(errOut, "antrea-gw0 has no global IPv6 address") {
		t.Errorf("no IPv6 on the gateway: exit %d %q", code, errOut)
	}
	h.tracer.err = errors.New("ovs-appctl: br-int: unknown bridge")
	if code, _, errOut := h.run(t, "trace", "10.222.2.1"); code != ExitError || !strings.Contains(errOut, "cannot trace on bridge br-int: ovs-appctl: br-int: unknown bridge") {
		t.Errorf("tracer error: exit %d %q", code, errOut)
	}
	code, out, _ := h.run(t, "trace", "--help")
	if code != ExitOK || !strings.Contains(out, "agentctl trace [flags] [GATEWAY-IP...]") || !strings.Contains(out, "-gateway-interface") {
		t.Errorf("trace --help: exit %d\n%s", code, out)
	}
}
