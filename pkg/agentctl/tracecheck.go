package agentctl

import (
	"context"
	"fmt"
	"net"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
)

// checkSource runs agentctl check's comparison once for a trace and tells,
// per gateway that was not answered, what check says about it.
type checkSource struct {
	report *Report
	// err is why check could not run.
	err error
	// routesErr is set when the routes could not be read: only flows
	// were compared.
	routesErr error
}

func (a *app) newCheckSource(ctx context.Context, st *apiserver.State, stErr error, target ofctl.Target) *checkSource {
	if st == nil {
		return &checkSource{err: fmt.Errorf("agentctl check needs the agent's local API: %w", stErr)}
	}
	flows, err := a.dumper().DumpFlows(ctx, target, ofctl.DumpOptions{Table: ofctl.AllTables, NoStats: true})
	if err != nil {
		return &checkSource{err: fmt.Errorf("cannot read the flows of bridge %s: %w", target.Bridge, err)}
	}
	routes, routesErr := a.listRoutes()
	rep, err := Diff(st, flows, routes)
	if err != nil {
		return &checkSource{err: err}
	}
	return &checkSource{report: rep, routesErr: routesErr}
}

// about returns check's problems of node (when known), of flows that
// match gateway, and of the base flows of table, where the request fell
// through (a missing fallback flow is why it was dropped).
func (c *checkSource) about(gateway net.IP, node string, table uint8) *TraceCheck {
	if c.err != nil {
		return &TraceCheck{Problems: []Problem{}, Note: c.err.Error()}
	}
	tc := &TraceCheck{Available: true, Problems: []Problem{}}
	for _, p := range c.report.Problems {
		if c.routesErr != nil && p.Kind == KindRoute {
			continue
		}
		if (node != "" && p.Node == node) || problemMatchesGateway(p, gateway) || baseFlowProblemIn(p, table) {
			tc.Problems = append(tc.Problems, p)
		}
	}
	switch {
	case len(tc.Problems) > 0:
		plural := "s"
		if len(tc.Problems) == 1 {
			plural = ""
		}
		tc.Note = fmt.Sprintf("agentctl check reports %d problem%s for %s or its table", len(tc.Problems), plural, subject(gateway, node))
	case node == "":
		tc.Note = fmt.Sprintf("no remote Node the agent knows has gateway %s, so check wants no responder for it and reports nothing (is the Node's pod CIDR set, and the IP the first address of it?)", gateway)
	default:
		tc.Note = fmt.Sprintf("agentctl check reports nothing for %s: the agent's flows are as it wants them; look at other tables or flows added by hand", subject(gateway, node))
	}
	if c.routesErr != nil {
		tc.Note += fmt.Sprintf(" (routes not compared: %v)", c.routesErr)
	}
	return tc
}

func subject(gateway net.IP, node string) string {
	if node == "" {
		return "gateway " + gateway.String()
	}
	return fmt.Sprintf("node %s (gateway %s)", node, gateway)
}

// baseFlowProblemIn is true for a missing or changed base flow (of no
// Node) in table. Unexpected flows there are left out: had one mattered,
// the trace would show it matching.
func baseFlowProblemIn(p Problem, table uint8) bool {
	if p.Kind != KindFlow || p.Node != "" || p.Problem == Unexpected {
		return false
	}
	text := p.Want
	if text == "" {
		text = p.Have
	}
	f, err := ofctl.ParseLine(text)
	return err == nil && f.Table == table
}

// problemMatchesGateway is true for a flow problem whose flow answers for
// gateway (arp_tpa or nd_target).
func problemMatchesGateway(p Problem, gateway net.IP) bool {
	if p.Kind != KindFlow {
		return false
	}
	for _, text := range []string{p.Want, p.Have} {
		if text == "" {
			continue
		}
		f, err := ofctl.ParseLine(text)
		if err != nil {
			continue
		}
		for _, field := range []string{"arp_tpa", "nd_target"} {
			if v, ok := f.MatchField(field); ok && net.ParseIP(v).Equal(gateway) {
				return true
			}
		}
	}
	return false
}
