package openflow

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

// The flows the pipeline keeps once per remote Node gateway: each kind
// describes its flow once (table, priority, cookie category, match and
// actions), and everything that installs, deletes, counts, checks or prints
// those flows goes through the kinds of gatewayFlowKinds.

const (
	arpOpRequest = 1
	arpOpReply   = 2
)

// IPv6 neighbor discovery (RFC 4861).
const (
	icmpv6TypeNS = 135 // Neighbor Solicitation
	icmpv6TypeNA = 136 // Neighbor Advertisement
	// ndOptTargetLinkAddr is the type of the Target Link-Layer Address
	// option. The kernel's solicitation carries a Source Link-Layer
	// Address option (type 1) of the same size: the responder retypes it
	// and table 22 fills in the virtual MAC.
	ndOptTargetLinkAddr = 2
	// ndAdvertFlags is the advertisement's flags word (OVS's nd_reserved,
	// the 32 bits after the ICMPv6 checksum): Router, Solicited and
	// Override set, as a router answering a solicitation for its own
	// address does. Solicited makes the kernel's entry REACHABLE,
	// Override makes it take the MAC.
	ndAdvertFlags = 0xe0000000
)

// gatewayFlowKind is a flow the pipeline keeps once per remote gateway of
// one IP family.
type gatewayFlowKind struct {
	// name says what the flow is, in errors.
	name string
	// family is the gateways' IP family: 4 or 6.
	family   int
	table    uint8
	priority uint16
	// category is the cookie category of the kind's flows.
	category Category
	// gatewayField is the match field, as ovs-ofctl names it, that holds
	// the gateway: agentctl tells by it which remote Node a flow serves.
	gatewayField string
	// match and actions describe the flow of gateway gw, given in the
	// form of its family (4 bytes for IPv4, 16 for IPv6).
	match   func(gw net.IP) []matchTerm
	actions func(p pipeline, gw net.IP) []flowAction
	// next is the table the flow continues in, as flowSpec.next.
	next uint8
}

// spec returns the flow of gateway, or an error if gateway is not of the
// kind's family.
func (k *gatewayFlowKind) spec(p pipeline, gateway net.IP) (flowSpec, error) {
	if ipFamily(gateway) != k.family {
		return flowSpec{}, fmt.Errorf("%s needs an IPv%d gateway, got %s", k.name, k.family, gateway)
	}
	gw := familyForm(gateway)
	s := k.matchSpec(p, gw)
	s.actions, s.next = k.actions(p, gw), k.next
	return s, nil
}

// matchSpec returns the flow of gateway (of the kind's family) without its
// actions: enough for its ID in a dump, or to delete it, and cheaper to
// build for thousands of gateways.
func (k *gatewayFlowKind) matchSpec(p pipeline, gateway net.IP) flowSpec {
	return flowSpec{
		table:    k.table,
		priority: k.priority,
		cookie:   p.cookie(k.category),
		match:    k.match(familyForm(gateway)),
	}
}

// kindsOf returns the kinds of flows gateway gets: those of its family.
func kindsOf(gateway net.IP) []*gatewayFlowKind {
	var kinds []*gatewayFlowKind
	family := ipFamily(gateway)
	for _, k := range gatewayFlowKinds {
		if k.family == family {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// GatewayMatchField returns the match field (as ovs-ofctl names it) that
// holds the gateway in the per-gateway flows of cookie category c, and
// false if c is not the category of per-gateway flows.
func GatewayMatchField(c Category) (string, bool) {
	for _, k := range gatewayFlowKinds {
		if k.category == c {
			return k.gatewayField, true
		}
	}
	return "", false
}

// ipFamily returns 4 for an IPv4 (or IPv4-mapped) address, 6 for another
// IPv6 one, 0 for anything else.
func ipFamily(ip net.IP) int {
	switch {
	case ip.To4() != nil:
		return 4
	case ip.To16() != nil:
		return 6
	default:
		return 0
	}
}

// familyForm returns ip in the form of its family: 4 bytes for IPv4, 16
// for IPv6.
func familyForm(ip net.IP) net.IP {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4
	}
	return ip.To16()
}

// arpResponder answers an ARP request for the gateway (an IPv4 address)
// with the virtual MAC, turning the request into a reply in place and
// sending it back where it came from:
//
//	priority=200,arp,arp_tpa=<gw>,arp_op=1 actions=
//	  move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[], set eth_src to the virtual MAC,
//	  load:0x2->NXM_OF_ARP_OP[], move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],
//	  load:<vmac>->NXM_NX_ARP_SHA[], move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],
//	  load:<gw>->NXM_OF_ARP_SPA[], IN_PORT
var arpResponder = &gatewayFlowKind{
	name:         "ARP responder",
	family:       4,
	table:        ArpResponderTable,
	priority:     PriorityArpResponder,
	category:     CategoryNodeRoute,
	gatewayField: "arp_tpa",
	match: func(gw net.IP) []matchTerm {
		return []matchTerm{matchARP(), matchArpTpa(gw), matchArpOp(arpOpRequest)}
	},
	actions: func(p pipeline, gw net.IP) []flowAction {
		return []flowAction{
			move(nxmEthSrc, nxmEthDst, bitsMAC),
			setEthSrc(p.virtualMAC),
			load(nxmArpOp, bitsARPOp, arpOpReply),
			move(nxmArpSha, nxmArpTha, bitsMAC),
			load(nxmArpSha, bitsMAC, macToUint64(p.virtualMAC)),
			move(nxmArpSpa, nxmArpTpa, bitsIPv4),
			load(nxmArpSpa, bitsIPv4, uint64(binary.BigEndian.Uint32(gw))),
			output(openflow13.P_IN_PORT),
		}
	},
}

// ndpResponder answers a Neighbor Solicitation for the gateway (an IPv6
// address) with a Neighbor Advertisement from the virtual MAC, turning the
// solicitation into the advertisement in place. The solicitation may be
// sent to the gateway's solicited-node multicast address or (when the
// kernel re-checks a known neighbour) to the gateway itself; either way the
// answer goes from the gateway to the solicitation's source:
//
//	priority=200,icmp6,icmp_type=135,nd_target=<gw> actions=
//	  move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[], set eth_src to the virtual MAC,
//	  move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[], set ipv6_src to <gw>,
//	  load:0x88->NXM_NX_ICMPV6_TYPE[], load:0->NXM_NX_ICMPV6_CODE[],
//	  load:0xe0000000->ERICOXM_OF_ICMPV6_ND_RESERVED[] (flags R, S, O),
//	  load:0x2->ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE[] (SLL option becomes TLL),
//	  goto_table:22 (which writes the virtual MAC into the option and
//	  sends the packet back IN_PORT)
//
// The hop limit stays 255 (receivers drop ND with any other) and OVS
// recomputes the ICMPv6 checksum as it writes the fields.
var ndpResponder = &gatewayFlowKind{
	name:         "NDP responder",
	family:       6,
	table:        NdpResponderTable,
	priority:     PriorityNdpResponder,
	category:     CategoryNodeRouteNDP,
	gatewayField: "nd_target",
	match: func(gw net.IP) []matchTerm {
		return []matchTerm{matchICMPv6(icmpv6TypeNS), matchNdTarget(gw)}
	},
	actions: func(p pipeline, gw net.IP) []flowAction {
		return []flowAction{
			move(nxmEthSrc, nxmEthDst, bitsMAC),
			setEthSrc(p.virtualMAC),
			move(nxmIPv6Src, nxmIPv6Dst, bitsIPv6),
			setIPv6Src(gw),
			load(nxmICMPv6Type, bitsICMPv6Type, icmpv6TypeNA),
			load(nxmICMPv6Code, bitsICMPv6Code, 0),
			load(ericoxmNdReserved, bitsNdReserved, ndAdvertFlags),
			load(ericoxmNdOptionsType, bitsNdOptionsType, ndOptTargetLinkAddr),
		}
	},
	next: NdpTllTable,
}

// gatewayFlowKinds are the flows the pipeline keeps once per remote gateway
// of their family. A Node's gateways get every kind of their family.
var gatewayFlowKinds = []*gatewayFlowKind{arpResponder, ndpResponder}

// responderKind returns the responder that answers address resolution for
// gateway: ARP for an IPv4 address, NDP for any other.
func responderKind(gateway net.IP) *gatewayFlowKind {
	if gateway.To4() != nil {
		return arpResponder
	}
	return ndpResponder
}

// gatewayFlows returns the messages that add the flows of gateway, one per
// kind of its family.
func (p pipeline) gatewayFlows(gateway net.IP) ([]*openflow13.FlowMod, error) {
	var mods []*openflow13.FlowMod
	for _, k := range kindsOf(gateway) {
		s, err := k.spec(p, gateway)
		if err != nil {
			return nil, err
		}
		mods = append(mods, s.addMessage())
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("gateway %s is neither an IPv4 nor an IPv6 address", gateway)
	}
	return mods, nil
}

// deleteGatewayFlows returns the messages that remove the flows of gateway,
// whatever their cookie round.
func deleteGatewayFlows(gateway net.IP) []*openflow13.FlowMod {
	var mods []*openflow13.FlowMod
	for _, k := range kindsOf(gateway) {
		mods = append(mods, k.matchSpec(pipeline{}, gateway).deleteMessage())
	}
	return mods
}
