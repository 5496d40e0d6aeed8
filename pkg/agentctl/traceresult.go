package agentctl

import (
	"fmt"
	"net"
	"strings"

	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

// GatewayInterface is the local gateway interface, as netlink shows it:
// the requests agentctl trace builds come from its MAC and addresses.
type GatewayInterface struct {
	Name string `json:"name"`
	MAC  string `json:"mac"`
	IPv4 string `json:"ipv4,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
}

// Outcomes of a trace.
const (
	// OutcomeAnswered: a responder flow turned the request into a reply
	// and sent it back IN_PORT.
	OutcomeAnswered = "answered"
	// OutcomeNormal: the request reached the responder table's
	// fallback flow (priority 190, NORMAL): OVS floods it like any ARP
	// or solicitation, and nobody answers for a remote gateway.
	OutcomeNormal = "normal"
	// OutcomeDropped: the request was dropped (a drop flow or no flow at
	// all in a table).
	OutcomeDropped = "dropped"
	// OutcomeOther: the pipeline did something else with it (flows not
	// the agent's).
	OutcomeOther = "other"
)

// GatewayTrace is the trace of one gateway's resolution request.
type GatewayTrace struct {
	// Gateway is the remote gateway IP being resolved.
	Gateway string `json:"gateway"`
	// Family is "IPv4" (an ARP request) or "IPv6" (a Neighbor
	// Solicitation).
	Family string `json:"family"`
	// Node is the remote Node whose gateway it is, when the agent knows.
	Node string `json:"node,omitempty"`
	// Request is the packet traced, in ofproto/trace's flow syntax.
	Request string `json:"request"`
	// Path are the tables the packet went through.
	Path []TraceHop `json:"path"`
	// FinalAction is the last action of the last flow, what becomes of
	// the packet: "IN_PORT" (answered), "NORMAL", "drop".
	FinalAction string `json:"finalAction"`
	// DatapathActions are what the datapath would do, as the tracer says.
	DatapathActions string `json:"datapathActions"`
	Outcome         string `json:"outcome"`
	// Answered is Outcome == "answered" and the reply is as the agent
	// makes it.
	Answered bool `json:"answered"`
	// Reply is the packet as OVS rewrote it, when it was answered.
	Reply *TraceReply `json:"reply,omitempty"`
	// Summary says in one sentence what happened, and why.
	Summary string `json:"summary"`
	// Check is what agentctl check says about this gateway's Node (only
	// when the request was not answered).
	Check *TraceCheck `json:"check,omitempty"`
	// OVSTrace is ofproto/trace's output, verbatim.
	OVSTrace string `json:"ovsTrace"`
}

// TraceHop is one table of a trace.
type TraceHop struct {
	Table     uint8  `json:"table"`
	TableName string `json:"tableName,omitempty"`
	// NoMatch is true when no flow of the table matched.
	NoMatch  bool        `json:"noMatch,omitempty"`
	Priority uint16      `json:"priority"`
	Match    string      `json:"match"`
	Cookie   *CookieInfo `json:"cookie,omitempty"`
	// Node is the remote Node the flow answers for, when the agent knows.
	Node    string   `json:"node,omitempty"`
	Actions []string `json:"actions"`
	// Notes are the tracer's remarks ("NXM_OF_ETH_DST[] is now ...").
	Notes []string `json:"notes,omitempty"`
}

// TraceReply holds the reply's fields as OVS rewrote them: ARP's op,
// sha, spa, tha and tpa, or the Neighbor Advertisement's ICMPv6 type,
// addresses, target and target link-layer address; the Ethernet addresses
// for both.
type TraceReply struct {
	EthSrc string `json:"ethSrc"`
	EthDst string `json:"ethDst"`
	// ARP.
	Op  string `json:"op,omitempty"`
	SHA string `json:"sha,omitempty"`
	SPA string `json:"spa,omitempty"`
	THA string `json:"tha,omitempty"`
	TPA string `json:"tpa,omitempty"`
	// Neighbor Advertisement.
	ICMPv6Type string `json:"icmpv6Type,omitempty"`
	IPv6Src    string `json:"ipv6Src,omitempty"`
	IPv6Dst    string `json:"ipv6Dst,omitempty"`
	NDTarget   string `json:"ndTarget,omitempty"`
	NDTLL      string `json:"ndTll,omitempty"`
}

// String is the reply in ovs-fields(7) names, as one line.
func (r *TraceReply) String() string {
	if r.Op != "" {
		return fmt.Sprintf("arp_op=%s eth_src=%s eth_dst=%s arp_sha=%s arp_spa=%s arp_tha=%s arp_tpa=%s",
			r.Op, r.EthSrc, r.EthDst, r.SHA, r.SPA, r.THA, r.TPA)
	}
	return fmt.Sprintf("icmpv6_type=%s eth_src=%s eth_dst=%s ipv6_src=%s ipv6_dst=%s nd_target=%s nd_tll=%s",
		r.ICMPv6Type, r.EthSrc, r.EthDst, r.IPv6Src, r.IPv6Dst, r.NDTarget, r.NDTLL)
}

// TraceCheck is what agentctl check says about a gateway that is not
// answered.
type TraceCheck struct {
	// Available is false when check could not run (no agent).
	Available bool `json:"available"`
	// Problems are check's problems of the gateway's Node or flow.
	Problems []Problem `json:"problems"`
	// Note explains the result, or why check could not run.
	Note string `json:"note"`
}

// traceContext is what interpretTrace needs besides the trace.
type traceContext struct {
	gateway    net.IP
	node       string
	virtualMAC string
	// round is the agent's flow round, 0 when unknown.
	round uint16
	ix    nodeIndex
}

// interpretTrace turns ofproto/trace's output into a GatewayTrace: the
// path in the pipeline's table names, the outcome, and the reply's fields.
func interpretTrace(tc traceContext, request string, res *ofctl.TraceResult, raw string) GatewayTrace {
	gt := GatewayTrace{Gateway: tc.gateway.String(), Family: family(tc.gateway), Node: tc.node,
		Request: request, DatapathActions: res.DatapathActions, OVSTrace: raw, Path: []TraceHop{}}
	for i := range res.Steps {
		s := &res.Steps[i]
		hop := TraceHop{Table: s.Table, TableName: openflow.TableName(s.Table), NoMatch: s.NoMatch,
			Priority: s.Priority, Match: s.Match, Actions: s.Actions, Notes: s.Notes}
		if hop.Actions == nil {
			hop.Actions = []string{}
		}
		if !s.NoMatch {
			c := cookieInfo(s.Cookie)
			hop.Cookie = &c
			hop.Node = tc.ix.flowNode(&ofctl.Flow{Cookie: s.Cookie, Match: s.Match})
		}
		gt.Path = append(gt.Path, hop)
	}
	if len(res.Steps) == 0 {
		gt.Outcome = OutcomeOther
		gt.Summary = "the tracer shows no table lookup"
		return gt
	}
	last := &res.Steps[len(res.Steps)-1]
	gt.FinalAction = last.LastAction()
	where := tableText(last.Table)
	switch action := last.LastAction(); {
	case action == "IN_PORT":
		gt.Outcome = OutcomeAnswered
		gt.Reply = replyFields(tc.gateway, ofctl.FlowFields(res.FinalFlow))
		gt.Answered, gt.Summary = judgeReply(tc, gt.Reply, responderStep(res.Steps))
	case last.NoMatch:
		gt.Outcome = OutcomeDropped
		gt.Summary = fmt.Sprintf("no flow of %s matched: dropped (no responder for %s)", where, gt.Gateway)
	case action == "NORMAL" && isResponderTable(last.Table) && last.Priority == fallbackPriority(last.Table):
		gt.Outcome = OutcomeNormal
		gt.Summary = fmt.Sprintf("fell through %s to its priority-%d NORMAL flow: no responder flow for %s, so OVS floods the request like any other and nothing answers for a remote gateway",
			where, last.Priority, gt.Gateway)
	case action == "drop" || action == "":
		gt.Outcome = OutcomeDropped
		if last.Priority == openflow.PriorityMiss {
			gt.Summary = fmt.Sprintf("fell through %s to its priority-0 drop flow: dropped (no responder for %s, and no NORMAL fallback flow either)", where, gt.Gateway)
		} else {
			gt.Summary = fmt.Sprintf("dropped by a priority-%d flow of %s", last.Priority, where)
		}
	default:
		gt.Outcome = OutcomeOther
		gt.Summary = fmt.Sprintf("ended in %s with %s: not the agent's pipeline", where, action)
	}
	return gt
}

// responderStep is the step that answered: the last one in a responder
// table (table 21 hands the advertisement to table 22, which only fills in
// the MAC), else the last one.
func responderStep(steps []ofctl.TraceStep) *ofctl.TraceStep {
	for i := len(steps) - 1; i >= 0; i-- {
		if isResponderTable(steps[i].Table) && !steps[i].NoMatch {
			return &steps[i]
		}
	}
	return &steps[len(steps)-1]
}

// judgeReply says whether the reply is the one the agent's responder
// makes: an ARP reply (op 2) or a Neighbor Advertisement (type 136) from
// the virtual MAC for the gateway.
func judgeReply(tc traceContext, r *TraceReply, step *ofctl.TraceStep) (bool, string) {
	by := fmt.Sprintf("the priority-%d flow of %s", step.Priority, tableText(step.Table))
	if n := tc.ix.flowNode(&ofctl.Flow{Cookie: step.Cookie, Match: step.Match}); n != "" {
		by = fmt.Sprintf("%s's responder flow in %s", n, tableText(step.Table))
	}
	var wrong []string
	if r.Op != "" {
		if r.Op != "2" {
			wrong = append(wrong, "arp_op="+r.Op)
		}
		if r.SPA != tc.gateway.String() {
			wrong = append(wrong, "arp_spa="+r.SPA)
		}
		if !sameMAC(r.SHA, tc.virtualMAC) {
			wrong = append(wrong, "arp_sha="+r.SHA)
		}
	} else {
		if r.ICMPv6Type != "136" {
			wrong = append(wrong, "icmpv6_type="+r.ICMPv6Type)
		}
		if r.IPv6Src != tc.gateway.String() {
			wrong = append(wrong, "ipv6_src="+r.IPv6Src)
		}
		if !sameMAC(r.NDTLL, tc.virtualMAC) {
			wrong = append(wrong, "nd_tll="+r.NDTLL)
		}
	}
	if !sameMAC(r.EthSrc, tc.virtualMAC) {
		wrong = append(wrong, "eth_src="+r.EthSrc)
	}
	if len(wrong) > 0 {
		return false, fmt.Sprintf("sent back IN_PORT by %s, but not as the agent's reply for %s with the virtual MAC %s: %s",
			by, tc.gateway, tc.virtualMAC, strings.Join(wrong, ", "))
	}
	what := "ARP reply"
	if r.Op == "" {
		what = "Neighbor Advertisement"
	}
	s := fmt.Sprintf("answered by %s: %s %s is at %s (the virtual MAC), sent back IN_PORT", by, what, tc.gateway, tc.virtualMAC)
	if c := openflow.DecodeCookie(step.Cookie); tc.round != 0 && c.Round != tc.round {
		s += fmt.Sprintf("; its cookie is of round %d, the agent is at round %d", c.Round, tc.round)
	}
	return true, s
}

func sameMAC(a, b string) bool {
	ma, errA := net.ParseMAC(a)
	mb, errB := net.ParseMAC(b)
	return errA == nil && errB == nil && ma.String() == mb.String()
}

func replyFields(gateway net.IP, f map[string]string) *TraceReply {
	r := &TraceReply{EthSrc: f["dl_src"], EthDst: f["dl_dst"]}
	if gateway.To4() != nil {
		r.Op, r.SHA, r.SPA, r.THA, r.TPA = f["arp_op"], f["arp_sha"], f["arp_spa"], f["arp_tha"], f["arp_tpa"]
		return r
	}
	r.ICMPv6Type, r.IPv6Src, r.IPv6Dst, r.NDTarget, r.NDTLL = f["icmp_type"], f["ipv6_src"], f["ipv6_dst"], f["nd_target"], f["nd_tll"]
	return r
}

func isResponderTable(t uint8) bool {
	return t == openflow.ArpResponderTable || t == openflow.NdpResponderTable
}

func fallbackPriority(t uint8) uint16 {
	if t == openflow.NdpResponderTable {
		return openflow.PriorityNdpNormal
	}
	return openflow.PriorityArpNormal
}

// tableText is "table 20 (ArpResponder)", or "table 7" for a table the
// agent does not use.
func tableText(t uint8) string {
	if name := openflow.TableName(t); name != "" {
		return fmt.Sprintf("table %d (%s)", t, name)
	}
	return fmt.Sprintf("table %d", t)
}

func family(ip net.IP) string {
	if ip.To4() != nil {
		return "IPv4"
	}
	return "IPv6"
}
