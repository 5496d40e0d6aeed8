package ofctl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// TraceResult is the output of `ovs-appctl ofproto/trace`, parsed. The
// tracer prints (OVS 3.1; captured in testdata/trace-*.txt):
//
//	Flow: arp,in_port=1,...
//
//	bridge("br-int")
//	----------------
//	 0. arp, priority 200, cookie 0x1000000000000
//	    goto_table:20
//	20. arp,arp_tpa=10.222.2.1,arp_op=1, priority 200, cookie 0x1020000000000
//	    move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]
//	     -> NXM_OF_ETH_DST[] is now 02:00:00:00:00:01
//	    ...
//	    IN_PORT
//
//	Final flow: arp,in_port=1,...   (or "Final flow: unchanged")
//	Megaflow: ...
//	Datapath actions: ...
//
// A table where nothing matches shows as "20. No match." followed by
// "drop".
type TraceResult struct {
	// Flow is the packet as the tracer took it (after "Flow: ").
	Flow string
	// Bridge is the first bridge the packet went through.
	Bridge string
	// Steps are the flows (or table misses) the packet met, in order.
	Steps []TraceStep
	// FinalFlow is the packet after the pipeline's rewrites; it equals
	// Flow when the tracer printed "Final flow: unchanged".
	FinalFlow string
	// Unchanged is true when no action rewrote the packet.
	Unchanged bool
	// Megaflow and DatapathActions are the tracer's last lines.
	Megaflow        string
	DatapathActions string
}

// TraceStep is one table lookup of a trace.
type TraceStep struct {
	Table uint8
	// NoMatch is true when no flow of the table matched ("No match.").
	NoMatch bool
	// Match, Priority and Cookie are the matching flow's.
	Match    string
	Priority uint16
	Cookie   uint64
	// Actions are the flow's actions as the tracer ran them, one per
	// line ("drop" after a miss); the tracer's notes ("-> ... is now
	// ...") are in Notes.
	Actions []string
	Notes   []string
	// Line is the step's header line as printed, trimmed.
	Line string
}

// LastAction is the step's last action, or "".
func (s *TraceStep) LastAction() string {
	if len(s.Actions) == 0 {
		return ""
	}
	return s.Actions[len(s.Actions)-1]
}

var (
	stepLine   = regexp.MustCompile(`^\s*(\d+)\. (.*)$`)
	bridgeLine = regexp.MustCompile(`^bridge\("(.*)"\)$`)
	// ruleTail is the end of a step's header: ", priority N" or
	// "priority N" (an empty match), then the cookie when it is not 0.
	ruleTail = regexp.MustCompile(`(?:^|, )priority (\d+)(?:, cookie (0x[0-9a-fA-F]+))?$`)
)

// ParseTrace parses ofproto/trace's output. Lines it does not know (the
// slow path's explanation, notes of other OVS versions) are skipped; a
// missing "Flow:" line or an unreadable step header is an error.
func ParseTrace(out string) (*TraceResult, error) {
	res := &TraceResult{}
	var step *TraceStep
	stepIndent := 0
	for i, raw := range strings.Split(out, "\n") {
		line := strings.TrimRight(raw, " \r")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Flow: "):
			res.Flow = strings.TrimPrefix(line, "Flow: ")
			step = nil
			continue
		case strings.HasPrefix(line, "Final flow: "):
			res.FinalFlow = strings.TrimPrefix(line, "Final flow: ")
			step = nil
			continue
		case strings.HasPrefix(line, "Megaflow: "):
			res.Megaflow = strings.TrimPrefix(line, "Megaflow: ")
			continue
		case strings.HasPrefix(line, "Datapath actions: "):
			res.DatapathActions = strings.TrimPrefix(line, "Datapath actions: ")
			continue
		case trimmed == "":
			step = nil
			continue
		}
		if m := bridgeLine.FindStringSubmatch(trimmed); m != nil {
			if res.Bridge == "" {
				res.Bridge = m[1]
			}
			continue
		}
		if m := stepLine.FindStringSubmatch(line); m != nil && (step == nil || indent(line) <= stepIndent) {
			s, err := parseStep(m[1], m[2])
			if err != nil {
				return nil, fmt.Errorf("ofproto/trace output line %d %q: %w", i+1, trimmed, err)
			}
			s.Line = trimmed
			res.Steps = append(res.Steps, s)
			step = &res.Steps[len(res.Steps)-1]
			stepIndent = indent(line)
			continue
		}
		if step != nil && indent(line) > stepIndent {
			if strings.HasPrefix(trimmed, "->") {
				step.Notes = append(step.Notes, strings.TrimSpace(strings.TrimPrefix(trimmed, "->")))
			} else {
				step.Actions = append(step.Actions, trimmed)
			}
		}
	}
	if res.Flow == "" {
		return nil, fmt.Errorf("ofproto/trace output has no %q line:\n%s", "Flow:", out)
	}
	if res.FinalFlow == "unchanged" || res.FinalFlow == "" {
		res.Unchanged = true
		res.FinalFlow = res.Flow
	}
	return res, nil
}

func indent(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

func parseStep(table, rest string) (TraceStep, error) {
	id, err := strconv.ParseUint(table, 10, 8)
	if err != nil {
		return TraceStep{}, fmt.Errorf("table %q: %w", table, err)
	}
	s := TraceStep{Table: uint8(id)}
	if strings.HasPrefix(rest, "No match") {
		s.NoMatch = true
		return s, nil
	}
	m := ruleTail.FindStringSubmatchIndex(rest)
	if m == nil {
		return TraceStep{}, fmt.Errorf("no %q in the step", "priority N")
	}
	prio, err := strconv.ParseUint(rest[m[2]:m[3]], 10, 16)
	if err != nil {
		return TraceStep{}, fmt.Errorf("priority: %w", err)
	}
	s.Priority = uint16(prio)
	if m[4] >= 0 {
		if s.Cookie, err = strconv.ParseUint(rest[m[4]+2:m[5]], 16, 64); err != nil {
			return TraceStep{}, fmt.Errorf("cookie: %w", err)
		}
	}
	s.Match = rest[:m[0]]
	return s, nil
}

// FlowFields splits a flow as the tracer prints it ("arp,in_port=1,
// dl_src=...") into its fields; a field without a value ("arp") maps to "".
func FlowFields(flow string) map[string]string {
	fields := map[string]string{}
	for _, part := range strings.Split(flow, ",") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		fields[k] = v
	}
	return fields
}
