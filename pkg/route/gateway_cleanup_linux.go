package route

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// GatewayAddressesPresent returns those of addrs (interface addresses such
// as 10.222.1.1/24) that the interface name has, in the order of addrs. An
// interface that does not exist has none. The interface is the one in ns.
func GatewayAddressesPresent(ns *Namespace, name string, addrs []*net.IPNet) ([]*net.IPNet, error) {
	handle := ns.handle
	link, err := handle.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up gateway interface %s: %w", name, err)
	}
	have, err := handle.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	var out []*net.IPNet
	for _, a := range addrs {
		if hasAddr(have, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// hasAddr reports whether have holds want, with the same prefix length.
func hasAddr(have []netlink.Addr, want *net.IPNet) bool {
	for _, h := range have {
		if h.IPNet != nil && h.IP.Equal(want.IP) && sameMask(h.Mask, want.Mask) {
			return true
		}
	}
	return false
}

// RemoveGatewayAddress takes the address (e.g. 10.222.1.1/24) off the
// interface name in ns.
func RemoveGatewayAddress(ns *Namespace, name string, addr *net.IPNet) error {
	handle := ns.handle
	link, err := handle.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up gateway interface %s: %w", name, err)
	}
	if err := handle.AddrDel(link, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("remove address %s from %s: %w", addr, name, err)
	}
	return nil
}

func sameMask(a, b net.IPMask) bool {
	aOnes, aBits := a.Size()
	bOnes, bBits := b.Size()
	return aOnes == bOnes && aBits == bBits
}
