package openflow

import (
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
// prints them, table by table: the text of the flows the client installs
// (baseFlowSpecs); the integration tests check the two on a real bridge.
func ExpectedBaseFlows(round uint16, virtualMAC net.HardwareAddr) []FlowText {
	specs := pipeline{round: round, virtualMAC: virtualMAC}.baseFlowSpecs()
	texts := make([]FlowText, len(specs))
	for i, s := range specs {
		texts[i] = s.text()
	}
	return texts
}

// ExpectedResponderFlow returns the flow that answers address resolution for
// gateway as ovs-ofctl prints it: ExpectedArpResponderFlow for an IPv4
// address, ExpectedNdpResponderFlow for an IPv6 one.
func ExpectedResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	return expectedGatewayFlow(responderKind(gateway), round, virtualMAC, gateway)
}

// ExpectedArpResponderFlow returns the ARP responder flow (table 20) of an
// IPv4 gateway as ovs-ofctl prints it.
func ExpectedArpResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	return expectedGatewayFlow(arpResponder, round, virtualMAC, gateway)
}

// ExpectedNdpResponderFlow returns the NDP responder flow (table 21) of an
// IPv6 gateway as ovs-ofctl prints it: ovs-ofctl prints the 128-bit
// set_field of ipv6_src as two 64-bit loads, low half first, and
// goto_table as resubmit.
func ExpectedNdpResponderFlow(round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	return expectedGatewayFlow(ndpResponder, round, virtualMAC, gateway)
}

func expectedGatewayFlow(k *gatewayFlowKind, round uint16, virtualMAC net.HardwareAddr, gateway net.IP) (FlowText, error) {
	s, err := k.spec(pipeline{round: round, virtualMAC: virtualMAC}, gateway)
	if err != nil {
		return FlowText{}, err
	}
	return s.text(), nil
}
