package route

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// GatewayAddressesPresent returns those of addrs (interface addresses such
// as 10.222.1.1/24) that the interface name has, in the order of addrs. An
// interface that does not exist has none. A nil handle means the current
// network namespace.
func GatewayAddressesPresent(handle *netlink.Handle, name string, addrs []*net.IPNet) ([]*net.IPNet, error) {
	if handle == nil {
		handle = &netlink.Handle{}
	}
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
		for _, h := range have {
			if h.IPNet != nil && h.IP.Equal(a.IP) && sameMask(h.Mask, a.Mask) {
				out = append(out, a)
				break
			}
		}
	}
	return out, nil
}

// RemoveGatewayAddress takes the address (e.g. 10.222.1.1/24) off the
// interface name.
func RemoveGatewayAddress(handle *netlink.Handle, name string, addr *net.IPNet) error {
	if handle == nil {
		handle = &netlink.Handle{}
	}
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
