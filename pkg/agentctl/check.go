package agentctl

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

const checkUsage = `check asks the agent what the Nodes want (as the agent computed it: every
remote Node's usable pod CIDRs and gateway IPs, its flow round and virtual
MAC), builds the flows and routes that should exist from that (an ARP
responder in table 20 per IPv4 gateway, an NDP responder in table 21 per
IPv6 gateway, the base flows of tables 0, 20, 21 and 22, a route per pod
CIDR of either family), and compares them with the bridge's tables 0, 20,
21 and 22 and with the routes of protocol 94:

  missing     wanted, not there
  unexpected  there, not wanted (flows of an earlier round, flows added by
              hand, routes of deleted Nodes)
  changed     there with other actions, cookie or gateway than wanted

Flows are compared by table, priority and match, then cookie and actions;
routes by destination, then gateway. Other tables are not looked at.

The agent is read first, the bridge and the kernel after: a change made by
the agent in between shows as drift once; run check again to confirm.

Exit status: 0 no drift, 1 drift, 2 the agent, OVS or netlink could not be
read.

Examples:
  agentctl check
  agentctl check -o json
`

var checkCommand = command{
	name:    "check",
	summary: "Compare what the Nodes want with the bridge and the routing table; exit 1 on drift.",
	usage:   checkUsage,
	flags: func(fs *flag.FlagSet, a *app) func(context.Context) int {
		var out string
		registerOutput(fs, &out)
		return func(ctx context.Context) int { return a.check(ctx, out) }
	},
}

// Problem kinds and what is wrong.
const (
	KindFlow  = "flow"
	KindRoute = "route"

	Missing    = "missing"
	Unexpected = "unexpected"
	Changed    = "changed"
)

// Problem is one difference between what is wanted and what is there.
type Problem struct {
	// Kind is KindFlow or KindRoute.
	Kind string `json:"kind"`
	// Problem is Missing, Unexpected or Changed.
	Problem string `json:"problem"`
	// Node is the remote Node the flow or route belongs to, if any.
	Node string `json:"node,omitempty"`
	// Want is the wanted flow (ovs-ofctl --no-stats syntax) or route.
	Want string `json:"want,omitempty"`
	// Have is what is there.
	Have string `json:"have,omitempty"`
	// Note explains, e.g. "cookie round 1, the agent is at round 2".
	Note string `json:"note,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", p.Problem, p.Kind)
	if p.Node != "" {
		fmt.Fprintf(&b, " of node %s", p.Node)
	}
	if p.Note != "" {
		fmt.Fprintf(&b, " (%s)", p.Note)
	}
	b.WriteString(":")
	switch p.Problem {
	case Changed:
		fmt.Fprintf(&b, "\n  want: %s\n  have: %s", p.Want, p.Have)
	case Missing:
		fmt.Fprintf(&b, "\n  %s", p.Want)
	default:
		fmt.Fprintf(&b, "\n  %s", p.Have)
	}
	return b.String()
}

// Report is the result of check; it is also its JSON and YAML shape.
type Report struct {
	Node         string `json:"node"`
	Bridge       string `json:"bridge"`
	FlowRound    uint16 `json:"flowRound"`
	FullSyncDone bool   `json:"fullSyncDone"`
	OVSConnected bool   `json:"ovsConnected"`
	// FlowsWanted and FlowsFound count the flows of the agent's tables.
	FlowsWanted int `json:"flowsWanted"`
	FlowsFound  int `json:"flowsFound"`
	// RoutesWanted and RoutesFound count routes of protocol 94.
	RoutesWanted int       `json:"routesWanted"`
	RoutesFound  int       `json:"routesFound"`
	Problems     []Problem `json:"problems"`
	// Clean is true when there is no problem.
	Clean bool `json:"clean"`
}

// Diff compares what the agent's state says the Nodes want with the flows
// of a bridge (all tables; only the agent's are compared) and with the
// routes of protocol 94.
func Diff(st *apiserver.State, flows []ofctl.Flow, routes []route.Route) (*Report, error) {
	mac, err := net.ParseMAC(st.VirtualMAC)
	if err != nil {
		return nil, fmt.Errorf("the agent's virtual MAC %q: %w", st.VirtualMAC, err)
	}
	rep := &Report{
		Node: st.NodeName, Bridge: st.Bridge, FlowRound: st.FlowRound,
		FullSyncDone: st.FullSyncDone, OVSConnected: st.OVSConnected, Problems: []Problem{},
	}
	ix := newNodeIndex(st)

	// Flows: what the agent's own flow check wants, for the gateways the
	// Nodes want.
	type wantedRoute struct{ gateway, node string }
	wantedRoutes := map[string]wantedRoute{}
	gatewayNode := map[string]string{}
	var gateways []net.IP
	for _, n := range st.RemoteNodes {
		for _, s := range n.Desired {
			gw := net.ParseIP(s.GatewayIP)
			if gw == nil {
				return nil, fmt.Errorf("node %s: gateway IP %q from the agent is not an IP", n.Name, s.GatewayIP)
			}
			wantedRoutes[s.PodCIDR] = wantedRoute{gateway: gw.String(), node: n.Name}
			gatewayNode[gw.String()] = n.Name
			gateways = append(gateways, gw)
		}
	}
	wanted := map[string]openflow.FlowText{}
	wantedNode := map[string]string{}
	for _, w := range openflow.WantedFlows(st.FlowRound, mac, gateways) {
		f := w.Text()
		wanted[f.Key()] = f
		if w.Gateway != nil {
			wantedNode[f.Key()] = gatewayNode[w.Gateway.String()]
		}
	}
	agentTables := map[uint8]bool{}
	for _, t := range openflow.Tables() {
		agentTables[t] = true
	}
	found := map[string]*ofctl.Flow{}
	var foundKeys []string
	for i := range flows {
		f := &flows[i]
		if !agentTables[f.Table] {
			continue
		}
		found[f.Key()] = f
		foundKeys = append(foundKeys, f.Key())
	}
	rep.FlowsWanted, rep.FlowsFound = len(wanted), len(found)

	var flowProblems []Problem
	for key, w := range wanted {
		f, ok := found[key]
		if !ok {
			flowProblems = append(flowProblems, Problem{Kind: KindFlow, Problem: Missing, Node: wantedNode[key], Want: w.String()})
			continue
		}
		if f.Text() == w && len(f.Extra) == 0 {
			continue
		}
		flowProblems = append(flowProblems, Problem{Kind: KindFlow, Problem: Changed, Node: wantedNode[key],
			Want: w.String(), Have: trimLeadingSpace(f.Line), Note: changedFlowNote(st.FlowRound, w, f)})
	}
	for _, key := range foundKeys {
		if _, ok := wanted[key]; ok {
			continue
		}
		f := found[key]
		flowProblems = append(flowProblems, Problem{Kind: KindFlow, Problem: Unexpected, Node: ix.flowNode(f),
			Have: trimLeadingSpace(f.Line), Note: unexpectedFlowNote(st, f)})
	}
	sort.SliceStable(flowProblems, func(i, j int) bool {
		return flowSortKey(flowProblems[i]) < flowSortKey(flowProblems[j])
	})

	// Routes.
	foundRoutes := map[string]string{}
	for _, r := range routes {
		foundRoutes[r.Dst.String()] = ipString(r.Gateway)
	}
	rep.RoutesWanted, rep.RoutesFound = len(wantedRoutes), len(foundRoutes)
	var routeProblems []Problem
	for dst, w := range wantedRoutes {
		want := routeText(dst, w.gateway)
		gw, ok := foundRoutes[dst]
		switch {
		case !ok:
			routeProblems = append(routeProblems, Problem{Kind: KindRoute, Problem: Missing, Node: w.node, Want: want})
		case gw != w.gateway:
			routeProblems = append(routeProblems, Problem{Kind: KindRoute, Problem: Changed, Node: w.node, Want: want, Have: routeText(dst, gw)})
		}
	}
	for dst, gw := range foundRoutes {
		if _, ok := wantedRoutes[dst]; ok {
			continue
		}
		p := Problem{Kind: KindRoute, Problem: Unexpected, Node: ix.byCIDR[dst], Have: routeText(dst, gw)}
		if p.Node != "" {
			p.Note = "the Node no longer wants this pod CIDR"
		} else {
			p.Note = "no Node has this pod CIDR"
		}
		routeProblems = append(routeProblems, p)
	}
	sort.SliceStable(routeProblems, func(i, j int) bool {
		return bytes.Compare(routeProblemKey(routeProblems[i]), routeProblemKey(routeProblems[j])) < 0
	})

	rep.Problems = append(append(rep.Problems, flowProblems...), routeProblems...)
	rep.Clean = len(rep.Problems) == 0
	return rep, nil
}

// flowSortKey orders flow problems by table, then priority (highest
// first), then match.
func flowSortKey(p Problem) string {
	text := p.Want
	if text == "" {
		text = p.Have
	}
	f, err := ofctl.ParseLine(text)
	if err != nil {
		return text
	}
	return fmt.Sprintf("%03d/%05d/%s", f.Table, 0xffff-int(f.Priority), f.Match)
}

// routeProblemKey orders route problems as sortRoutes orders routes.
func routeProblemKey(p Problem) []byte {
	text := p.Want
	if text == "" {
		text = p.Have
	}
	dst, _, _ := strings.Cut(text, " ")
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		return []byte(text)
	}
	return routeKey(route.Route{Dst: n})
}

func routeText(dst, gw string) string {
	return fmt.Sprintf("%s via %s proto %d onlink", dst, gw, route.Protocol)
}

func changedFlowNote(round uint16, want openflow.FlowText, have *ofctl.Flow) string {
	var notes []string
	if have.Cookie != want.Cookie {
		c := openflow.DecodeCookie(have.Cookie)
		if c.Round != round {
			notes = append(notes, fmt.Sprintf("cookie of round %d, the agent is at round %d", c.Round, round))
		} else {
			notes = append(notes, fmt.Sprintf("cookie %#x, want %#x", have.Cookie, want.Cookie))
		}
	}
	if have.Actions != want.Actions {
		notes = append(notes, "other actions")
	}
	if len(have.Extra) > 0 {
		notes = append(notes, "extra fields "+strings.Join(have.Extra, ", "))
	}
	return strings.Join(notes, "; ")
}

func unexpectedFlowNote(st *apiserver.State, f *ofctl.Flow) string {
	c := openflow.DecodeCookie(f.Cookie)
	switch {
	case f.Cookie == 0:
		return "cookie 0: not the agent's, added by hand?"
	case c.Round != st.FlowRound:
		note := fmt.Sprintf("round %d, the agent is at round %d: left by an earlier run", c.Round, st.FlowRound)
		if !st.FullSyncDone {
			note += ", removed after the first full sync"
		}
		return note
	case isGatewayFlow(c.Category):
		return "the agent's round, but no Node wants this gateway"
	default:
		return "the agent's round, not one of its flows"
	}
}

// isGatewayFlow reports whether cookie category c is that of the flows
// the agent keeps per remote gateway.
func isGatewayFlow(c openflow.Category) bool {
	_, ok := openflow.GatewayMatchField(c)
	return ok
}

func (a *app) check(ctx context.Context, out string) int {
	const cmd = "check"
	if err := validOutput(out); err != nil {
		return a.usageError(cmd, err)
	}
	st, err := a.agentState(ctx)
	if err != nil {
		return a.fail(cmd, fmt.Errorf("cannot tell what the Nodes want: %w", err))
	}
	target := a.target(st)
	flows, err := a.dumper().DumpFlows(ctx, target, ofctl.DumpOptions{Table: ofctl.AllTables, NoStats: true})
	if err != nil {
		return a.fail(cmd, fmt.Errorf("cannot read the flows of bridge %s: %w", target.Bridge, err))
	}
	routes, err := a.listRoutes()
	if err != nil {
		return a.fail(cmd, err)
	}
	rep, err := Diff(st, flows, routes)
	if err != nil {
		return a.fail(cmd, err)
	}
	rep.Bridge = target.Bridge
	if out != outputText {
		if err := writeStructured(a.env.Stdout, out, rep); err != nil {
			return a.fail(cmd, err)
		}
	} else {
		writeReport(a.env.Stdout, rep)
	}
	if !rep.Clean {
		return ExitDrift
	}
	return ExitOK
}

// agentTablesText lists the agent's tables as "0, 20, 21 and 22".
func agentTablesText() string {
	var ids []string
	for _, t := range openflow.Tables() {
		ids = append(ids, fmt.Sprint(t))
	}
	if len(ids) < 2 {
		return strings.Join(ids, "")
	}
	return strings.Join(ids[:len(ids)-1], ", ") + " and " + ids[len(ids)-1]
}

func writeReport(w io.Writer, rep *Report) {
	sync := "first full sync done"
	if !rep.FullSyncDone {
		sync = "first full sync NOT done yet: flows of earlier rounds and stale routes may remain until it is"
	}
	fmt.Fprintf(w, "node %s, bridge %s, flow round %d, %s\n", rep.Node, rep.Bridge, rep.FlowRound, sync)
	if !rep.OVSConnected {
		fmt.Fprintln(w, "warning: the agent is not connected to OVS")
	}
	fmt.Fprintf(w, "flows:  %d wanted in tables %s, %d on the bridge\n", rep.FlowsWanted, agentTablesText(), rep.FlowsFound)
	fmt.Fprintf(w, "routes: %d wanted, %d with protocol %d\n", rep.RoutesWanted, rep.RoutesFound, route.Protocol)
	if rep.Clean {
		fmt.Fprintln(w, "OK: no drift")
		return
	}
	counts := map[string]int{}
	var order []string
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
		k := p.Problem + " " + p.Kind
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range order {
		s := ""
		if counts[k] > 1 {
			s = "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s%s", counts[k], k, s))
	}
	fmt.Fprintf(w, "DRIFT: %s\n", strings.Join(parts, ", "))
}
