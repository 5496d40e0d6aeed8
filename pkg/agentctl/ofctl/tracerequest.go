package ofctl

import (
	"fmt"
	"net"
)

// broadcastMAC is where the kernel sends an ARP request.
const broadcastMAC = "ff:ff:ff:ff:ff:ff"

// ARPRequest is the ARP request a host with srcMAC and srcIP sends to
// resolve target, in the tracer's flow syntax, entering the bridge at
// inPort (a port name or number): broadcast, op 1, the sender's addresses,
// an all-zero target MAC, as Linux sends it.
func ARPRequest(inPort string, srcMAC net.HardwareAddr, srcIP, target net.IP) (string, error) {
	src4, tgt4 := srcIP.To4(), target.To4()
	if src4 == nil || tgt4 == nil {
		return "", fmt.Errorf("an ARP request needs IPv4 addresses, got source %s and target %s", srcIP, target)
	}
	return fmt.Sprintf("in_port=%s,arp,dl_src=%s,dl_dst=%s,arp_op=1,arp_sha=%s,arp_spa=%s,arp_tha=00:00:00:00:00:00,arp_tpa=%s",
		inPort, srcMAC, broadcastMAC, srcMAC, src4, tgt4), nil
}

// NeighborSolicitation is the Neighbor Solicitation (RFC 4861) a host with
// srcMAC and srcIP sends to resolve target, in the tracer's flow syntax:
// to target's solicited-node multicast address (ff02::1:ffXX:XXXX, MAC
// 33:33:ff:XX:XX:XX), hop limit 255, with a source link-layer address
// option, as Linux sends it for an address it does not know yet.
func NeighborSolicitation(inPort string, srcMAC net.HardwareAddr, srcIP, target net.IP) (string, error) {
	if srcIP.To4() != nil || srcIP.To16() == nil || target.To4() != nil || target.To16() == nil {
		return "", fmt.Errorf("a Neighbor Solicitation needs IPv6 addresses, got source %s and target %s", srcIP, target)
	}
	t := target.To16()
	group := net.IP{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15]}
	groupMAC := net.HardwareAddr{0x33, 0x33, 0xff, t[13], t[14], t[15]}
	return fmt.Sprintf("in_port=%s,icmp6,dl_src=%s,dl_dst=%s,ipv6_src=%s,ipv6_dst=%s,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=%s,nd_sll=%s",
		inPort, srcMAC, groupMAC, srcIP, group, target, srcMAC), nil
}

// ResolutionRequest is ARPRequest for an IPv4 target and
// NeighborSolicitation for an IPv6 one.
func ResolutionRequest(inPort string, srcMAC net.HardwareAddr, srcIP, target net.IP) (string, error) {
	if target.To4() != nil {
		return ARPRequest(inPort, srcMAC, srcIP, target)
	}
	return NeighborSolicitation(inPort, srcMAC, srcIP, target)
}
