package openflow

import (
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	ipProtoICMPv6 = 58
)

// matchTerm is one part of a flow's match: the OXM fields it sends and how
// ovs-ofctl prints them. One term may be several fields: ovs-ofctl prints
// eth_type=0x0806 as "arp", and eth_type=0x86dd,ip_proto=58 as "icmp6".
type matchTerm struct {
	text   string
	fields []openflow13.MatchField
}

// matchARP matches ARP packets ("arp").
func matchARP() matchTerm {
	return matchTerm{text: "arp", fields: []openflow13.MatchField{*openflow13.NewEthTypeField(etherTypeARP)}}
}

// matchArpTpa matches ARP packets whose target protocol address is ip, an
// IPv4 address in 4-byte form. It follows matchARP.
func matchArpTpa(ip net.IP) matchTerm {
	return matchTerm{text: "arp_tpa=" + ip.String(), fields: []openflow13.MatchField{*openflow13.NewArpTpaField(ip)}}
}

// matchArpOp matches ARP packets of opcode op. It follows matchARP.
func matchArpOp(op uint16) matchTerm {
	return matchTerm{text: fmt.Sprintf("arp_op=%d", op), fields: []openflow13.MatchField{*openflow13.NewArpOperField(op)}}
}

// matchICMPv6 matches ICMPv6 messages of the given type
// ("icmp6,icmp_type=<t>"), prerequisites first as OXM wants.
func matchICMPv6(icmpType uint8) matchTerm {
	return matchTerm{
		text: fmt.Sprintf("icmp6,icmp_type=%d", icmpType),
		fields: []openflow13.MatchField{
			*openflow13.NewEthTypeField(etherTypeIPv6),
			*openflow13.NewIpProtoField(ipProtoICMPv6),
			{
				Class:  openflow13.OXM_CLASS_OPENFLOW_BASIC,
				Field:  openflow13.OXM_FIELD_ICMPV6_TYPE,
				Length: 1,
				Value:  &openflow13.IcmpTypeField{Type: icmpType},
			},
		},
	}
}

// matchNdTarget matches neighbor discovery messages for target ip, an IPv6
// address in 16-byte form (OXM_OF_IPV6_ND_TARGET). It follows a
// matchICMPv6 of a solicitation or an advertisement, its prerequisite.
func matchNdTarget(ip net.IP) matchTerm {
	return matchTerm{
		text: "nd_target=" + ip.String(),
		fields: []openflow13.MatchField{{
			Class:  openflow13.OXM_CLASS_OPENFLOW_BASIC,
			Field:  openflow13.OXM_FIELD_IPV6_ND_TARGET,
			Length: net.IPv6len,
			Value:  &openflow13.Ipv6DstField{Ipv6Dst: ip},
		}},
	}
}
