package agentctl

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"

	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

const flowsUsage = `Text output is ovs-ofctl's own lines, verbatim (leading space included), in
the order ovs-vswitchd returns them, grouped by table; each table starts
with a header line '# table=<id> <name>' (the name only for the agent's
tables: 0 Classifier, 20 ArpResponder, 21 NdpResponder, 22 NdpResponderTll).
JSON and YAML give, per flow: table,
tableName, priority, match, actions, the cookie raw and decoded (round,
category, object), the remote Node it serves, and packets, bytes and
durationSeconds unless --no-stats.

With --node, only that remote Node's flows: the ARP responder flows (cookie
category 0x02) whose arp_tpa is one of its IPv4 gateway IPs and the NDP
responder flows (category 0x03) whose nd_target is one of its IPv6 ones.
--node needs the agent's API; without it, flows are shown without Node
names.

Examples:
  agentctl flows
  agentctl flows --table 20 --no-stats
  agentctl flows --table ArpResponder --node worker2
  agentctl flows --table NdpResponder --node worker2
  agentctl flows -o json | jq '.flows[] | select(.node == "worker2")'
`

var flowsCommand = command{
	name:    "flows",
	summary: "Show the bridge's flows in ovs-ofctl dump-flows syntax, each table under a header with its name.",
	usage:   flowsUsage,
	flags: func(fs *flag.FlagSet, a *app) func(context.Context) int {
		var table, node, out string
		var noStats bool
		fs.StringVar(&table, "table", "", "only this table: a number or a name (Classifier, ArpResponder, NdpResponder, NdpResponderTll)")
		fs.StringVar(&node, "node", "", "only the flows of this remote Node")
		fs.BoolVar(&noStats, "no-stats", false, "leave out durations and packet and byte counts")
		registerOutput(fs, &out)
		return func(ctx context.Context) int {
			return a.flows(ctx, table, node, noStats, out)
		}
	},
}

// FlowsOutput is the JSON and YAML shape of `agentctl flows`.
type FlowsOutput struct {
	Bridge string `json:"bridge"`
	// FlowRound is the agent's current cookie round, when it answered.
	FlowRound *uint16    `json:"flowRound,omitempty"`
	Flows     []FlowInfo `json:"flows"`
}

// FlowInfo is one flow in structured output.
type FlowInfo struct {
	Table     uint8      `json:"table"`
	TableName string     `json:"tableName,omitempty"`
	Priority  uint16     `json:"priority"`
	Match     string     `json:"match"`
	Actions   string     `json:"actions"`
	Cookie    CookieInfo `json:"cookie"`
	// Node is the remote Node the flow serves, if any.
	Node            string   `json:"node,omitempty"`
	Packets         *uint64  `json:"packets,omitempty"`
	Bytes           *uint64  `json:"bytes,omitempty"`
	DurationSeconds *float64 `json:"durationSeconds,omitempty"`
	// Extra are other fields ovs-ofctl printed (idle_timeout=10, ...).
	Extra []string `json:"extra,omitempty"`
	// Text is the line as ovs-ofctl printed it, without the leading
	// space.
	Text string `json:"text"`
}

// CookieInfo is a cookie, raw and decoded.
type CookieInfo struct {
	Raw          string `json:"raw"`
	Round        uint16 `json:"round"`
	Category     uint8  `json:"category"`
	CategoryName string `json:"categoryName"`
	Object       uint64 `json:"object"`
}

func cookieInfo(raw uint64) CookieInfo {
	c := openflow.DecodeCookie(raw)
	return CookieInfo{
		Raw:          fmt.Sprintf("%#x", raw),
		Round:        c.Round,
		Category:     uint8(c.Category),
		CategoryName: c.Category.String(),
		Object:       c.Object,
	}
}

// parseTable turns --table into a table ID.
func parseTable(s string) (int, error) {
	if s == "" {
		return ofctl.AllTables, nil
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if n > 254 {
			return 0, fmt.Errorf("--table %s: OpenFlow tables are 0 to 254", s)
		}
		return int(n), nil
	}
	if id, ok := openflow.TableByName(s); ok {
		return int(id), nil
	}
	var names []string
	for _, id := range openflow.Tables() {
		names = append(names, fmt.Sprintf("%s (%d)", openflow.TableName(id), id))
	}
	return 0, fmt.Errorf("--table %q: not a table number or one of %v", s, names)
}

func (a *app) flows(ctx context.Context, tableArg, node string, noStats bool, out string) int {
	const cmd = "flows"
	if err := validOutput(out); err != nil {
		return a.usageError(cmd, err)
	}
	table, err := parseTable(tableArg)
	if err != nil {
		return a.usageError(cmd, err)
	}
	st, stErr := a.agentState(ctx)
	if stErr != nil {
		if node != "" {
			return a.fail(cmd, fmt.Errorf("--node needs the agent to map flows to Nodes: %w", stErr))
		}
		t := a.target(nil)
		a.warn("%v; reading bridge %s in %s without Node names", stErr, t.Bridge, t.RunDir)
	}
	if node != "" {
		if err := checkNodeName(st, node); err != nil {
			return a.fail(cmd, err)
		}
	}
	target := a.target(st)
	flows, err := a.dumper().DumpFlows(ctx, target, ofctl.DumpOptions{Table: table, NoStats: noStats})
	if err != nil {
		return a.fail(cmd, fmt.Errorf("cannot read the flows of bridge %s: %w", target.Bridge, err))
	}
	ix := newNodeIndex(st)
	var selected []ofctl.Flow
	for i := range flows {
		if node == "" || ix.flowNode(&flows[i]) == node {
			selected = append(selected, flows[i])
		}
	}
	// Group by table, keeping ovs-vswitchd's order within each.
	sort.SliceStable(selected, func(i, j int) bool { return selected[i].Table < selected[j].Table })

	if out != outputText {
		res := FlowsOutput{Bridge: target.Bridge, Flows: []FlowInfo{}}
		if st != nil {
			round := st.FlowRound
			res.FlowRound = &round
		}
		for i := range selected {
			res.Flows = append(res.Flows, flowInfo(&selected[i], ix))
		}
		if err := writeStructured(a.env.Stdout, out, res); err != nil {
			return a.fail(cmd, err)
		}
		return ExitOK
	}
	if len(selected) == 0 && node != "" {
		fmt.Fprintf(a.env.Stderr, "agentctl: no flows of node %s on bridge %s\n", node, target.Bridge)
	}
	last := -1
	for _, f := range selected {
		if int(f.Table) != last {
			fmt.Fprintln(a.env.Stdout, TableHeader(f.Table))
			last = int(f.Table)
		}
		fmt.Fprintln(a.env.Stdout, f.Line)
	}
	return ExitOK
}

// TableHeader is the line agentctl prints before a table's flows in text
// mode: "# table=20 ArpResponder", or "# table=7" for a table the agent
// does not use.
func TableHeader(table uint8) string {
	h := fmt.Sprintf("# table=%d", table)
	if name := openflow.TableName(table); name != "" {
		h += " " + name
	}
	return h
}

func flowInfo(f *ofctl.Flow, ix nodeIndex) FlowInfo {
	fi := FlowInfo{
		Table:     f.Table,
		TableName: openflow.TableName(f.Table),
		Priority:  f.Priority,
		Match:     f.Match,
		Actions:   f.Actions,
		Cookie:    cookieInfo(f.Cookie),
		Node:      ix.flowNode(f),
		Extra:     f.Extra,
		Text:      trimLeadingSpace(f.Line),
	}
	if s := f.Stats; s != nil {
		packets, bytes, d := s.Packets, s.Bytes, s.DurationSeconds
		fi.Packets, fi.Bytes, fi.DurationSeconds = &packets, &bytes, &d
	}
	return fi
}

func trimLeadingSpace(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}
