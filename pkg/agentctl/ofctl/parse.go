// Package ofctl reads a bridge's flows with `ovs-ofctl dump-flows` and
// parses its output. ovs-ofctl is the source of truth and the formatter:
// agentctl prints its lines verbatim and parses them only for structured
// output, filtering and comparison.
package ofctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

// Flow is one line of `ovs-ofctl dump-flows` output.
type Flow struct {
	// Line is the line as ovs-ofctl printed it, leading space included,
	// without the newline.
	Line     string
	Cookie   uint64
	Table    uint8
	Priority uint16
	// Match is the match without the priority ("arp,arp_tpa=10.222.2.1,
	// arp_op=1"), empty for a match-all flow.
	Match string
	// Actions is what follows "actions=".
	Actions string
	// Stats are nil when the dump was made with --no-stats.
	Stats *Stats
	// Extra holds the other fields ovs-ofctl printed before the match
	// (idle_timeout=10, hard_timeout=..., importance=..., flags such as
	// send_flow_rem), in order.
	Extra []string
}

// Stats are a flow's counters as ovs-ofctl prints them.
type Stats struct {
	DurationSeconds float64
	Packets         uint64
	Bytes           uint64
	// IdleAge and HardAge are -1 when ovs-ofctl did not print them.
	IdleAge int64
	HardAge int64
}

// Key identifies the flow in its bridge (table, priority, match); see
// openflow.FlowKey.
func (f *Flow) Key() string { return openflow.FlowKey(f.Table, f.Priority, f.Match) }

// Text is the flow without its stats and extra fields, in the syntax of
// `ovs-ofctl dump-flows --no-stats`.
func (f *Flow) Text() openflow.FlowText {
	return openflow.FlowText{Cookie: f.Cookie, Table: f.Table, Priority: f.Priority, Match: f.Match, Actions: f.Actions}
}

// MatchField returns the value of a field of the match ("arp_tpa" ->
// "10.222.2.1"), or "" and false when the match has none. A field given
// without a value ("arp") has the value "".
func (f *Flow) MatchField(name string) (string, bool) {
	for _, part := range strings.Split(f.Match, ",") {
		k, v, _ := strings.Cut(part, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// Parse parses the output of `ovs-ofctl dump-flows`, with or without
// --no-stats. Reply headers ("NXST_FLOW reply (xid=0x4):", printed by
// older ovs-ofctl and by the statistics path of newer ones) and blank
// lines are skipped; any other line that is not a flow is an error naming
// its line number.
func Parse(output string) ([]Flow, error) {
	var flows []Flow
	for i, line := range strings.Split(output, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || isReplyHeader(line) {
			continue
		}
		f, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("ovs-ofctl output line %d: %w", i+1, err)
		}
		flows = append(flows, f)
	}
	return flows, nil
}

// isReplyHeader reports whether line is an OpenFlow reply header such as
// "NXST_FLOW reply (xid=0x4):" or "OFPST_FLOW reply (OF1.3) (xid=0x2):".
func isReplyHeader(line string) bool {
	t := strings.TrimSpace(line)
	return strings.HasSuffix(t, ":") && strings.Contains(t, " reply ")
}

// statsKeys are the fields ovs-ofctl prints before the match.
var headKeys = map[string]bool{
	"cookie": true, "duration": true, "table": true, "n_packets": true, "n_bytes": true,
	"idle_timeout": true, "hard_timeout": true, "idle_age": true, "hard_age": true, "importance": true,
}

// ParseLine parses one flow line.
func ParseLine(line string) (Flow, error) {
	f := Flow{Line: line, Priority: openflow.DefaultPriority}
	text := strings.TrimSpace(line)
	var head string
	switch {
	case strings.HasPrefix(text, "actions="):
		f.Actions = strings.TrimPrefix(text, "actions=")
	default:
		i := strings.Index(text, " actions=")
		if i < 0 {
			return Flow{}, fmt.Errorf("no actions in %q", line)
		}
		head, f.Actions = text[:i], text[i+len(" actions="):]
	}
	head = strings.TrimSuffix(strings.TrimSpace(head), ",")
	var match string
	if head != "" {
		parts := strings.Split(head, ", ")
		last := parts[len(parts)-1]
		if k, _, _ := strings.Cut(last, "="); headKeys[k] {
			// No match: the last part is a field like "table=7".
			match = ""
		} else {
			parts = parts[:len(parts)-1]
			// Flags ("send_flow_rem check_overlap") come before
			// the match with a space, not a comma.
			if i := strings.LastIndex(last, " "); i >= 0 {
				parts = append(parts, strings.Fields(last[:i])...)
				last = last[i+1:]
			}
			match = last
		}
		for _, p := range parts {
			if err := f.setHeadField(p); err != nil {
				return Flow{}, fmt.Errorf("%w in %q", err, line)
			}
		}
	}
	if rest, ok := strings.CutPrefix(match, "priority="); ok {
		prio, m, _ := strings.Cut(rest, ",")
		p, err := strconv.ParseUint(prio, 10, 16)
		if err != nil {
			return Flow{}, fmt.Errorf("bad priority %q in %q", prio, line)
		}
		f.Priority, match = uint16(p), m
	}
	f.Match = match
	return f, nil
}

func (f *Flow) stats() *Stats {
	if f.Stats == nil {
		f.Stats = &Stats{IdleAge: -1, HardAge: -1}
	}
	return f.Stats
}

func (f *Flow) setHeadField(field string) error {
	k, v, hasValue := strings.Cut(field, "=")
	if !hasValue || !headKeys[k] {
		f.Extra = append(f.Extra, field)
		return nil
	}
	var err error
	switch k {
	case "cookie":
		f.Cookie, err = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
	case "table":
		var t uint64
		t, err = strconv.ParseUint(v, 10, 8)
		if err != nil {
			// With --names, a table named in OVSDB is printed by
			// name.
			if id, ok := openflow.TableByName(v); ok {
				t, err = uint64(id), nil
			}
		}
		f.Table = uint8(t)
	case "duration":
		f.stats().DurationSeconds, err = strconv.ParseFloat(strings.TrimSuffix(v, "s"), 64)
	case "n_packets":
		f.stats().Packets, err = strconv.ParseUint(v, 10, 64)
	case "n_bytes":
		f.stats().Bytes, err = strconv.ParseUint(v, 10, 64)
	case "idle_age":
		f.stats().IdleAge, err = strconv.ParseInt(v, 10, 64)
	case "hard_age":
		f.stats().HardAge, err = strconv.ParseInt(v, 10, 64)
	default:
		f.Extra = append(f.Extra, field)
	}
	if err != nil {
		return fmt.Errorf("bad %s %q", k, v)
	}
	return nil
}
