package agentctl

import (
	"fmt"
	"io"
	"strings"
)

// writeTraces prints the traces for a human: per gateway, the request, the
// path table by table, the final actions, the reply or where it fell
// through, and check's view.
func writeTraces(w io.Writer, res *TraceOutput) {
	for i := range res.Traces {
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeTrace(w, res, &res.Traces[i])
	}
}

func writeTrace(w io.Writer, res *TraceOutput, t *GatewayTrace) {
	what := "ARP request"
	if t.Family == "IPv6" {
		what = "Neighbor Solicitation"
	}
	for_ := t.Gateway
	if t.Node != "" {
		for_ += " (node " + t.Node + ")"
	}
	src := res.GatewayInterface.IPv4
	if t.Family == "IPv6" {
		src = res.GatewayInterface.IPv6
	}
	fmt.Fprintf(w, "%s for %s from %s (%s, %s), bridge %s\n", what, for_, res.GatewayInterface.Name, res.GatewayInterface.MAC, src, res.Bridge)
	fmt.Fprintf(w, "request: %s\n", t.Request)
	var names []string
	for _, h := range t.Path {
		n := fmt.Sprint(h.Table)
		if h.TableName != "" {
			n = h.TableName
		}
		names = append(names, n)
	}
	fmt.Fprintf(w, "path:    %s\n", strings.Join(names, " → "))
	for _, h := range t.Path {
		name := h.TableName
		if name == "" {
			name = "-"
		}
		if h.NoMatch {
			fmt.Fprintf(w, "  table %d %s: no flow matched\n", h.Table, name)
		} else {
			match := h.Match
			if match == "" {
				match = "(any)"
			}
			fmt.Fprintf(w, "  table %d %s: %s priority %d cookie %s (%s)\n", h.Table, name, match, h.Priority, h.Cookie.Raw, cookieText(h))
		}
		for _, a := range h.Actions {
			fmt.Fprintf(w, "      %s\n", a)
		}
	}
	final := t.FinalAction
	if final == "IN_PORT" {
		final += " (back out of " + res.GatewayInterface.Name + ")"
	}
	fmt.Fprintf(w, "actions: %s; datapath actions: %s\n", final, t.DatapathActions)
	if t.Reply != nil {
		fmt.Fprintf(w, "reply:   %s\n", t.Reply)
	}
	verdict := "ANSWERED"
	if !t.Answered {
		verdict = "NOT ANSWERED"
	}
	fmt.Fprintf(w, "result:  %s: %s\n", verdict, t.Summary)
	if c := t.Check; c != nil {
		fmt.Fprintf(w, "check:   %s\n", c.Note)
		for _, p := range c.Problems {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(p.String(), "\n", "\n  "))
		}
	}
}

// cookieText is "round 1, NodeRoute, node worker2".
func cookieText(h TraceHop) string {
	s := fmt.Sprintf("round %d, %s", h.Cookie.Round, h.Cookie.CategoryName)
	if h.Node != "" {
		s += ", node " + h.Node
	}
	return s
}
