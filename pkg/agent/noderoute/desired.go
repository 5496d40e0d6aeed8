package noderoute

import (
	"net"

	corev1 "k8s.io/api/core/v1"
)

// podSubnet is one pod CIDR of a remote Node and the gateway IP that the
// route goes through and the ARP (IPv4) or NDP (IPv6) responder answers
// for.
type podSubnet struct {
	CIDR    *net.IPNet
	Gateway net.IP
}

// key identifies the subnet in maps and logs.
func (s podSubnet) key() string { return s.CIDR.String() }

// GatewayIP returns the first address of a pod CIDR (10.222.2.1 for
// 10.222.2.0/24, fd00:10:222:2::1 for fd00:10:222:2::/64): the address
// each node gives its gateway interface.
func GatewayIP(cidr *net.IPNet) net.IP {
	ip := cidr.IP.Mask(cidr.Mask)
	gw := make(net.IP, len(ip))
	copy(gw, ip)
	// The caller has rejected prefixes too long to hold a gateway, so
	// the network address never ends in 0xff and there is no carry.
	gw[len(gw)-1]++
	return gw
}

// nodePodCIDRs returns the pod CIDRs of a Node: spec.podCIDRs, or the older
// single spec.podCIDR when the list is empty.
func nodePodCIDRs(node *corev1.Node) []string {
	if len(node.Spec.PodCIDRs) > 0 {
		return node.Spec.PodCIDRs
	}
	if node.Spec.PodCIDR != "" {
		return []string{node.Spec.PodCIDR}
	}
	return nil
}

// parsePodSubnets turns pod CIDR strings into subnets. A CIDR that cannot be
// used is reported in errs and left out; the others are still returned, so
// one bad entry never blocks the rest. Both address families are parsed;
// each gets a route, and the flows client answers ARP for IPv4 gateways and
// NDP for IPv6 ones.
func parsePodSubnets(cidrs []string) (subnets []podSubnet, errs []error) {
	seen := map[string]bool{}
	for _, s := range cidrs {
		_, cidr, err := net.ParseCIDR(s)
		if err != nil {
			errs = append(errs, rejectf(RejectMalformed, "pod CIDR %q is not a CIDR", s))
			continue
		}
		if cidr.IP.To4() != nil {
			cidr.IP = cidr.IP.To4()
		}
		ones, bits := cidr.Mask.Size()
		switch {
		case ones == 0:
			// A /0 would route all traffic into the gateway.
			errs = append(errs, rejectf(RejectPrefixLength, "pod CIDR %s covers the whole address space", s))
			continue
		case ones > bits-2:
			errs = append(errs, rejectf(RejectPrefixLength, "pod CIDR %s leaves no room for a gateway and pods", s))
			continue
		}
		if seen[cidr.String()] {
			continue
		}
		seen[cidr.String()] = true
		subnets = append(subnets, podSubnet{CIDR: cidr, Gateway: GatewayIP(cidr)})
	}
	return subnets, errs
}

func overlaps(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}

// GatewayAddresses returns the addresses the local gateway interface gets
// for the Node's usable pod CIDRs: the gateway IP with the CIDR's prefix
// length (10.222.1.1/24 for 10.222.1.0/24, fd00:10:222:1::1/64 for
// fd00:10:222:1::/64), both families. Unusable CIDRs are left out.
func GatewayAddresses(node *corev1.Node) []*net.IPNet {
	subnets, _ := parsePodSubnets(nodePodCIDRs(node))
	addrs := make([]*net.IPNet, 0, len(subnets))
	for _, s := range subnets {
		addrs = append(addrs, &net.IPNet{IP: s.Gateway, Mask: s.CIDR.Mask})
	}
	return addrs
}
