package agentctl

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netlinkGateway reads the gateway interface's MAC and global addresses
// through netlink, in the namespace at nsPath or, when it is empty, in
// agentctl's own.
func netlinkGateway(nsPath, name string) (*GatewayInterface, error) {
	h := &netlink.Handle{}
	if nsPath != "" {
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
		}
		defer ns.Close()
		if h, err = netlink.NewHandleAt(ns); err != nil {
			return nil, fmt.Errorf("netlink socket in network namespace %s: %w", nsPath, err)
		}
		defer h.Close()
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("gateway interface %s: %w", name, err)
	}
	gw := &GatewayInterface{Name: name, MAC: link.Attrs().HardwareAddr.String()}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	// The kernel sends its requests from the interface's global address
	// (the agent gives it one per family: the first of the local pod
	// CIDR); link-local ones are for other purposes.
	for _, a := range addrs {
		if a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if a.IP.To4() != nil {
			if gw.IPv4 == "" {
				gw.IPv4 = a.IP.String()
			}
		} else if gw.IPv6 == "" {
			gw.IPv6 = a.IP.String()
		}
	}
	return gw, nil
}
