package route

import (
	"fmt"
	"net"
)

// canonicalDst checks that dst is a network prefix (no host bits set, mask
// matching the address family) and returns a private copy with a 4-byte
// address for IPv4. The kernel rejects IPv4 prefixes with host bits set, so
// the netlink client and the Fake share this check to fail the same way.
func canonicalDst(dst *net.IPNet) (*net.IPNet, error) {
	if dst == nil || dst.IP == nil {
		return nil, fmt.Errorf("route destination is nil")
	}
	ip := dst.IP.To16()
	bits := 8 * net.IPv6len
	if ip4 := dst.IP.To4(); ip4 != nil {
		ip, bits = ip4, 8*net.IPv4len
	}
	if ip == nil {
		return nil, fmt.Errorf("route destination %v: invalid IP", dst.IP)
	}
	ones, maskBits := dst.Mask.Size()
	if maskBits != bits {
		return nil, fmt.Errorf("route destination %s: mask does not match the address family", dst)
	}
	mask := net.CIDRMask(ones, bits)
	if !ip.Mask(mask).Equal(ip) {
		return nil, fmt.Errorf("route destination %s: host bits set, want %s/%d", dst, ip.Mask(mask), ones)
	}
	return &net.IPNet{IP: append(net.IP(nil), ip...), Mask: mask}, nil
}

// canonicalGateway checks that gw is an address of dst's family and returns a
// private copy, 4 bytes long for IPv4.
func canonicalGateway(dst *net.IPNet, gw net.IP) (net.IP, error) {
	if gw == nil {
		return nil, fmt.Errorf("route %s: gateway is nil", dst)
	}
	dstIs4 := len(dst.IP) == net.IPv4len
	if gw4 := gw.To4(); gw4 != nil {
		if !dstIs4 {
			return nil, fmt.Errorf("route %s: gateway %s is IPv4", dst, gw)
		}
		return append(net.IP(nil), gw4...), nil
	}
	if dstIs4 {
		return nil, fmt.Errorf("route %s: gateway %s is not IPv4", dst, gw)
	}
	gw16 := gw.To16()
	if gw16 == nil {
		return nil, fmt.Errorf("route %s: invalid gateway %v", dst, gw)
	}
	return append(net.IP(nil), gw16...), nil
}
