package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
)

// DefaultPriority is OpenFlow's default flow priority, which ovs-ofctl
// leaves out of the flows it prints.
const DefaultPriority uint16 = 0x8000

// FlowText is a flow as `ovs-ofctl dump-flows --no-stats` prints it, in
// ovs-ofctl's default syntax (OpenFlow 1.0 with Nicira extensions, which is
// why table 0's goto_table shows as resubmit(,20)).
type FlowText struct {
	Cookie   uint64
	Table    uint8
	Priority uint16
	// Match is the match without the priority, e.g.
	// "arp,arp_tpa=10.222.2.1,arp_op=1"; empty for a match-all flow.
	Match string
	// Actions is what follows "actions=".
	Actions string
}

// String returns the flow exactly as `ovs-ofctl dump-flows --no-stats`
// prints it, without the leading space: cookie and table are left out when
// 0, the priority when it is the default.
func (f FlowText) String() string {
	var b strings.Builder
	if f.Cookie != 0 {
		fmt.Fprintf(&b, "cookie=%#x, ", f.Cookie)
	}
	if f.Table != 0 {
		fmt.Fprintf(&b, "table=%d, ", f.Table)
	}
	b.WriteString(matchWithPriority(f.Priority, f.Match))
	if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	b.WriteString(f.Actions)
	return b.String()
}

// Key identifies the flow in its bridge: OpenFlow tells flows apart by
// table, priority and match, e.g.
// "table=20,priority=200,arp,arp_tpa=10.222.2.1,arp_op=1".
func (f FlowText) Key() string {
	return FlowKey(f.Table, f.Priority, f.Match)
}

// FlowKey is FlowText.Key for a flow's parts.
func FlowKey(table uint8, priority uint16, match string) string {
	key := fmt.Sprintf("table=%d,priority=%d", table, priority)
	if match != "" {
		key += "," + match
	}
	return key
}

func matchWithPriority(priority uint16, match string) string {
	if priority == DefaultPriority {
		return match
	}
	if match == "" {
		return fmt.Sprintf("priority=%d", priority)
	}
	return fmt.Sprintf("priority=%d,%s", priority, match)
}

// ExpectedBaseFlows returns the pipeline's base flows of round as ovs-ofctl
// prints them, table by table. It mirrors pipeline.baseFlows; the
// integration tests check that the two agree on a real bridge.
func ExpectedBaseFlows(round uint16, virtualMAC net.HardwareAddr) []FlowText {
	cookie := Cookie{Round: round, Category: CategoryPipeline}.Uint64()
	ns := fmt.Sprintf("icmp6,icmp_type=%d", icmpv6TypeNS)
	return []FlowText{
		{Cookie: cookie, Table: ClassifierTable, Priority: PriorityClassifierArp, Match: "arp", Actions: fmt.Sprintf("resubmit(,%d)", ArpResponderTable)},
		{Cookie: cookie, Table: ClassifierTable, Priority: PriorityClassifierNdp, Match: ns, Actions: fmt.Sprintf("resubmit(,%d)", NdpResponderTable)},
		{Cookie: cookie, Table: ClassifierTable, Priority: PriorityMiss, Actions: "NORMAL"},
		{Cookie: cookie, Table: ArpResponderTable, Priority: PriorityArpNormal, Match: "arp", Actions: "NORMAL"},
		{Cookie: cookie, Table: ArpResponderTable, Priority: PriorityMiss, Actions: "drop"},
		{Cookie: cookie, Table: NdpResponderTable, Priority: PriorityNdpNormal, Match: ns, Actions: "NORMAL"},
		{Cookie: cookie, Table: NdpResponderTable, Priority: PriorityMiss, Actions: "drop"},
		{Cookie: cookie, Table: NdpTllTable, Priority: PriorityNdpTll, Match: fmt.Sprintf("icmp6,icmp_type=%d", icmpv6TypeNA),
			Actions: fmt.Sprintf("load:%s->%s[],IN_PORT", ofctlHex(macToUint64(virtualMAC)), nxmNdTll)},
		{Cookie: cookie, Table: NdpTllTable, Priority: PriorityMiss, Actions: "drop"},
	}
}

// ExpectedResponderFlow returns the flow that answers address resolution for
// gateway as ovs-ofctl prints it: ExpectedArpResponderFlow for an IPv4
// address, ExpectedNdpResponderFlow for an IPv6 one.
func ExpectedResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	if gateway.To4() != nil {
		return ExpectedArpResponderFlow(round, virtualMAC, gateway)
	}
	return ExpectedNdpResponderFlow(round, virtualMAC, gateway)
}

// ExpectedArpResponderFlow returns the ARP responder flow of an IPv4
// gateway as ovs-ofctl prints it. It mirrors pipeline.arpResponderFlow.
func ExpectedArpResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	gw4 := gateway.To4()
	if gw4 == nil {
		return FlowText{}, fmt.Errorf("ARP responder needs an IPv4 gateway, got %s", gateway)
	}
	actions := strings.Join([]string{
		fmt.Sprintf("move:%s[]->%s[]", nxmEthSrc, nxmEthDst),
		"mod_dl_src:" + virtualMAC.String(),
		fmt.Sprintf("load:%#x->%s[]", arpOpReply, nxmArpOp),
		fmt.Sprintf("move:%s[]->%s[]", nxmArpSha, nxmArpTha),
		fmt.Sprintf("load:%#x->%s[]", macToUint64(virtualMAC), nxmArpSha),
		fmt.Sprintf("move:%s[]->%s[]", nxmArpSpa, nxmArpTpa),
		fmt.Sprintf("load:%#x->%s[]", binary.BigEndian.Uint32(gw4), nxmArpSpa),
		"IN_PORT",
	}, ",")
	return FlowText{
		Cookie:   Cookie{Round: round, Category: CategoryNodeRoute}.Uint64(),
		Table:    ArpResponderTable,
		Priority: PriorityArpResponder,
		Match:    fmt.Sprintf("arp,arp_tpa=%s,arp_op=%d", gw4, arpOpRequest),
		Actions:  actions,
	}, nil
}

// ExpectedNdpResponderFlow returns the NDP responder flow (table 21) of an
// IPv6 gateway as ovs-ofctl prints it. It mirrors pipeline.ndpResponderFlow.
// ovs-ofctl prints the 128-bit set_field of ipv6_src as two 64-bit loads,
// low half first, and goto_table as resubmit.
func ExpectedNdpResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	gw16, err := ipv6Gateway(gateway)
	if err != nil {
		return FlowText{}, err
	}
	actions := strings.Join([]string{
		fmt.Sprintf("move:%s[]->%s[]", nxmEthSrc, nxmEthDst),
		"mod_dl_src:" + virtualMAC.String(),
		fmt.Sprintf("move:%s[]->%s[]", nxmIPv6Src, nxmIPv6Dst),
		fmt.Sprintf("load:%s->%s[0..63]", ofctlHex(binary.BigEndian.Uint64(gw16[8:])), nxmIPv6Src),
		fmt.Sprintf("load:%s->%s[64..127]", ofctlHex(binary.BigEndian.Uint64(gw16[:8])), nxmIPv6Src),
		fmt.Sprintf("load:%s->%s[]", ofctlHex(icmpv6TypeNA), nxmICMPv6Type),
		fmt.Sprintf("load:%s->%s[]", ofctlHex(0), nxmICMPv6Code),
		fmt.Sprintf("load:%s->%s[]", ofctlHex(ndAdvertFlags), ericoxmNdReserved),
		fmt.Sprintf("load:%s->%s[]", ofctlHex(ndOptTargetLinkAddr), ericoxmNdOptionsType),
		fmt.Sprintf("resubmit(,%d)", NdpTllTable),
	}, ",")
	return FlowText{
		Cookie:   Cookie{Round: round, Category: CategoryNodeRouteNDP}.Uint64(),
		Table:    NdpResponderTable,
		Priority: PriorityNdpResponder,
		Match:    fmt.Sprintf("icmp6,icmp_type=%d,nd_target=%s", icmpv6TypeNS, gw16),
		Actions:  actions,
	}, nil
}

// ofctlHex formats v as ovs-ofctl prints a loaded value: C's "%#x", which
// is "0" for zero and 0x-prefixed hex otherwise.
func ofctlHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}
