package openflow

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

const (
	etherTypeARP   = 0x0806
	arpOpRequest   = 1
	arpOpReply     = 2
	bitsMAC        = 48
	bitsIPv4       = 32
	bitsARPOp      = 16
	nxmEthSrc      = "NXM_OF_ETH_SRC"
	nxmEthDst      = "NXM_OF_ETH_DST"
	nxmArpOp       = "NXM_OF_ARP_OP"
	nxmArpSha      = "NXM_NX_ARP_SHA"
	nxmArpTha      = "NXM_NX_ARP_THA"
	nxmArpSpa      = "NXM_OF_ARP_SPA"
	nxmArpTpa      = "NXM_OF_ARP_TPA"
	noCookieFilter = 0
)

// IPv6 neighbor discovery (RFC 4861).
const (
	etherTypeIPv6 = 0x86dd
	ipProtoICMPv6 = 58
	icmpv6TypeNS  = 135 // Neighbor Solicitation
	icmpv6TypeNA  = 136 // Neighbor Advertisement
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

	bitsICMPv6Type    = 8
	bitsICMPv6Code    = 8
	bitsNdReserved    = 32
	bitsNdOptionsType = 8

	nxmIPv6Src           = "NXM_NX_IPV6_SRC"
	nxmIPv6Dst           = "NXM_NX_IPV6_DST"
	nxmICMPv6Type        = "NXM_NX_ICMPV6_TYPE"
	nxmICMPv6Code        = "NXM_NX_ICMPV6_CODE"
	nxmNdTll             = "NXM_NX_ND_TLL"
	ericoxmNdReserved    = "ERICOXM_OF_ICMPV6_ND_RESERVED"
	ericoxmNdOptionsType = "ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE"
)

// extensionFields are the OVS fields the NDP responder writes that
// libOpenflow has no name for: OVS's nd_reserved and nd_options_type
// (OVS 2.11+), which live in class ERICOXM_OF (0x1000) as fields 1 (4 bytes)
// and 2 (1 byte), per ovs-fields(7) and OVS's meta-flow.h. ovs-ofctl prints
// them as ERICOXM_OF_ICMPV6_ND_RESERVED and ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE
// (checked on a real bridge by TestNdpFlowsOnRealBridge).
var extensionFields = map[string]openflow13.MatchField{
	ericoxmNdReserved:    {Class: 0x1000, Field: 1, Length: 4},
	ericoxmNdOptionsType: {Class: 0x1000, Field: 2, Length: 1},
}

// pipeline builds the agent's flow messages for one round.
type pipeline struct {
	round      uint16
	virtualMAC net.HardwareAddr
}

func (p pipeline) cookie(c Category) uint64 {
	return Cookie{Round: p.round, Category: c}.Uint64()
}

// baseFlows returns table 0's dispatch flows, the fallback flows of tables
// 20 and 21 and table 22's flow:
//
//	table=0,  priority=200,arp actions=goto_table:20
//	table=0,  priority=200,icmp6,icmp_type=135 actions=goto_table:21
//	table=0,  priority=0 actions=NORMAL
//	table=20, priority=190,arp actions=NORMAL
//	table=20, priority=0 actions=drop
//	table=21, priority=190,icmp6,icmp_type=135 actions=NORMAL
//	table=21, priority=0 actions=drop
//	table=22, priority=200,icmp6,icmp_type=136 actions=<nd_tll := virtual MAC>,IN_PORT
//	table=22, priority=0 actions=drop
//
// The first four and the table-20 ones are the seed's pipeline, unchanged.
func (p pipeline) baseFlows() []*openflow13.FlowMod {
	cookie := p.cookie(CategoryPipeline)

	arpToResponder := newFlowMod(ClassifierTable, PriorityClassifierArp, cookie, openflow13.FC_ADD)
	arpToResponder.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	arpToResponder.AddInstruction(openflow13.NewInstrGotoTable(ArpResponderTable))

	nsToResponder := newFlowMod(ClassifierTable, PriorityClassifierNdp, cookie, openflow13.FC_ADD)
	addICMPv6Match(nsToResponder, icmpv6TypeNS)
	nsToResponder.AddInstruction(openflow13.NewInstrGotoTable(NdpResponderTable))

	classifierMiss := newFlowMod(ClassifierTable, PriorityMiss, cookie, openflow13.FC_ADD)
	classifierMiss.AddInstruction(applyActions(openflow13.NewActionOutput(openflow13.P_NORMAL)))

	arpNormal := newFlowMod(ArpResponderTable, PriorityArpNormal, cookie, openflow13.FC_ADD)
	arpNormal.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	arpNormal.AddInstruction(applyActions(openflow13.NewActionOutput(openflow13.P_NORMAL)))

	// No instruction at all is OpenFlow 1.3's drop.
	responderMiss := newFlowMod(ArpResponderTable, PriorityMiss, cookie, openflow13.FC_ADD)

	// A solicitation for an address that is not a remote gateway (another
	// host on the bridge, duplicate address detection) goes on as usual.
	nsNormal := newFlowMod(NdpResponderTable, PriorityNdpNormal, cookie, openflow13.FC_ADD)
	addICMPv6Match(nsNormal, icmpv6TypeNS)
	nsNormal.AddInstruction(applyActions(openflow13.NewActionOutput(openflow13.P_NORMAL)))

	ndpResponderMiss := newFlowMod(NdpResponderTable, PriorityMiss, cookie, openflow13.FC_ADD)

	// Only table 21's responders send packets here: advertisements they
	// made out of solicitations.
	naTll := newFlowMod(NdpTllTable, PriorityNdpTll, cookie, openflow13.FC_ADD)
	addICMPv6Match(naTll, icmpv6TypeNA)
	naTll.AddInstruction(applyActions(
		load(nxmNdTll, bitsMAC, macToUint64(p.virtualMAC)),
		openflow13.NewActionOutput(openflow13.P_IN_PORT),
	))

	ndpTllMiss := newFlowMod(NdpTllTable, PriorityMiss, cookie, openflow13.FC_ADD)

	return []*openflow13.FlowMod{
		arpToResponder, nsToResponder, classifierMiss,
		arpNormal, responderMiss,
		nsNormal, ndpResponderMiss,
		naTll, ndpTllMiss,
	}
}

// responderFlow returns the flow that answers address resolution for
// gateway: the ARP responder for an IPv4 address, the NDP responder for an
// IPv6 one.
func (p pipeline) responderFlow(gateway net.IP) (*openflow13.FlowMod, error) {
	if gateway.To4() != nil {
		return p.arpResponderFlow(gateway)
	}
	return p.ndpResponderFlow(gateway)
}

// deleteResponderFlow removes the responder flow of gateway, whatever its
// cookie round.
func deleteResponderFlow(gateway net.IP) *openflow13.FlowMod {
	if gateway.To4() != nil {
		return deleteArpResponderFlow(gateway)
	}
	return deleteNdpResponderFlow(gateway)
}

// arpResponderFlow answers an ARP request for gateway (an IPv4 address) with
// the virtual MAC, turning the request into a reply in place and sending it
// back where it came from:
//
//	priority=200,arp,arp_tpa=<gw>,arp_op=1 actions=
//	  move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[], set eth_src to the virtual MAC,
//	  load:0x2->NXM_OF_ARP_OP[], move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],
//	  load:<vmac>->NXM_NX_ARP_SHA[], move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],
//	  load:<gw>->NXM_OF_ARP_SPA[], IN_PORT
func (p pipeline) arpResponderFlow(gateway net.IP) (*openflow13.FlowMod, error) {
	gw4 := gateway.To4()
	if gw4 == nil {
		return nil, fmt.Errorf("ARP responder needs an IPv4 gateway, got %s", gateway)
	}
	fm := arpResponderMatch(gw4, p.cookie(CategoryNodeRoute), openflow13.FC_ADD)

	mac := macToUint64(p.virtualMAC)
	actions := []openflow13.Action{
		move(nxmEthSrc, nxmEthDst, bitsMAC),
		openflow13.NewActionSetField(*openflow13.NewEthSrcField(p.virtualMAC, nil)),
		load(nxmArpOp, bitsARPOp, arpOpReply),
		move(nxmArpSha, nxmArpTha, bitsMAC),
		load(nxmArpSha, bitsMAC, mac),
		move(nxmArpSpa, nxmArpTpa, bitsIPv4),
		load(nxmArpSpa, bitsIPv4, uint64(binary.BigEndian.Uint32(gw4))),
		openflow13.NewActionOutput(openflow13.P_IN_PORT),
	}
	fm.AddInstruction(applyActions(actions...))
	return fm, nil
}

// deleteArpResponderFlow removes the responder flow of gateway, whatever its
// cookie round.
func deleteArpResponderFlow(gateway net.IP) *openflow13.FlowMod {
	return arpResponderMatch(gateway.To4(), noCookieFilter, openflow13.FC_DELETE_STRICT)
}

func arpResponderMatch(gw4 net.IP, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := newFlowMod(ArpResponderTable, PriorityArpResponder, cookie, command)
	fm.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	fm.Match.AddField(*openflow13.NewArpTpaField(gw4))
	fm.Match.AddField(*openflow13.NewArpOperField(arpOpRequest))
	return fm
}

// ndpResponderFlow answers a Neighbor Solicitation for gateway (an IPv6
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
func (p pipeline) ndpResponderFlow(gateway net.IP) (*openflow13.FlowMod, error) {
	gw16, err := ipv6Gateway(gateway)
	if err != nil {
		return nil, err
	}
	fm := ndpResponderMatch(gw16, p.cookie(CategoryNodeRouteNDP), openflow13.FC_ADD)
	actions := []openflow13.Action{
		move(nxmEthSrc, nxmEthDst, bitsMAC),
		openflow13.NewActionSetField(*openflow13.NewEthSrcField(p.virtualMAC, nil)),
		move(nxmIPv6Src, nxmIPv6Dst, 8*net.IPv6len),
		// 128 bits do not fit a reg_load; ovs-ofctl shows this
		// set_field as two loads of 64 bits.
		openflow13.NewActionSetField(*openflow13.NewIpv6SrcField(gw16, nil)),
		load(nxmICMPv6Type, bitsICMPv6Type, icmpv6TypeNA),
		load(nxmICMPv6Code, bitsICMPv6Code, 0),
		load(ericoxmNdReserved, bitsNdReserved, ndAdvertFlags),
		load(ericoxmNdOptionsType, bitsNdOptionsType, ndOptTargetLinkAddr),
	}
	fm.AddInstruction(applyActions(actions...))
	fm.AddInstruction(openflow13.NewInstrGotoTable(NdpTllTable))
	return fm, nil
}

// deleteNdpResponderFlow removes the NDP responder flow of gateway, whatever
// its cookie round.
func deleteNdpResponderFlow(gateway net.IP) *openflow13.FlowMod {
	return ndpResponderMatch(gateway.To16(), noCookieFilter, openflow13.FC_DELETE_STRICT)
}

func ndpResponderMatch(gw16 net.IP, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := newFlowMod(NdpResponderTable, PriorityNdpResponder, cookie, command)
	addICMPv6Match(fm, icmpv6TypeNS)
	// OXM_OF_IPV6_ND_TARGET, after its prerequisites (ICMPv6 type 135).
	fm.Match.AddField(openflow13.MatchField{
		Class:  openflow13.OXM_CLASS_OPENFLOW_BASIC,
		Field:  openflow13.OXM_FIELD_IPV6_ND_TARGET,
		Length: net.IPv6len,
		Value:  &openflow13.Ipv6DstField{Ipv6Dst: gw16},
	})
	return fm
}

// addICMPv6Match makes fm match ICMPv6 messages of the given type
// (icmp6,icmp_type=<t> in ovs-ofctl), prerequisites first as OXM wants.
func addICMPv6Match(fm *openflow13.FlowMod, icmpType uint8) {
	fm.Match.AddField(*openflow13.NewEthTypeField(etherTypeIPv6))
	fm.Match.AddField(*openflow13.NewIpProtoField(ipProtoICMPv6))
	fm.Match.AddField(openflow13.MatchField{
		Class:  openflow13.OXM_CLASS_OPENFLOW_BASIC,
		Field:  openflow13.OXM_FIELD_ICMPV6_TYPE,
		Length: 1,
		Value:  &openflow13.IcmpTypeField{Type: icmpType},
	})
}

// ipv6Gateway returns gateway in 16-byte form if it is an IPv6 address (not
// an IPv4 or IPv4-mapped one), else an error.
func ipv6Gateway(gateway net.IP) (net.IP, error) {
	if gateway.To4() != nil || gateway.To16() == nil {
		return nil, fmt.Errorf("NDP responder needs an IPv6 gateway, got %s", gateway)
	}
	return gateway.To16(), nil
}

// deleteByCookie removes every flow of table whose cookie matches value in
// the bits of mask.
func deleteByCookie(table uint8, value, mask uint64) *openflow13.FlowMod {
	fm := newFlowMod(table, 0, value, openflow13.FC_DELETE)
	fm.CookieMask = mask
	return fm
}

func newFlowMod(table uint8, priority uint16, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := openflow13.NewFlowMod()
	fm.TableId = table
	fm.Priority = priority
	fm.Cookie = cookie
	// NewFlowMod leaves out_port and out_group at ANY, so deletes are not
	// restricted to an output.
	fm.Command = command
	return fm
}

func applyActions(actions ...openflow13.Action) *openflow13.InstrActions {
	instr := openflow13.NewInstrApplyActions()
	for _, a := range actions {
		// AddAction only fails for a nil action.
		_ = instr.AddAction(a, false)
	}
	return instr
}

func move(src, dst string, nBits uint16) openflow13.Action {
	return openflow13.NewNXActionRegMove(nBits, 0, 0, mustField(src), mustField(dst))
}

func load(dst string, nBits int, value uint64) openflow13.Action {
	return openflow13.NewNXActionRegLoad(openflow13.NewNXRange(0, nBits-1).ToOfsBits(), mustField(dst), value)
}

// mustField looks up an NXM field by name, in libOpenflow's table or in
// extensionFields. The names are constants of this file, so a failure is a
// programming error caught by the unit tests.
func mustField(name string) *openflow13.MatchField {
	if f, ok := extensionFields[name]; ok {
		return &f
	}
	f, err := openflow13.FindFieldHeaderByName(name, false)
	if err != nil {
		panic(fmt.Sprintf("unknown NXM field %s: %v", name, err))
	}
	return f
}

func macToUint64(mac net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range mac {
		v = v<<8 | uint64(b)
	}
	return v
}
