package route

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GatewayLink is the gateway interface with the addresses it must carry, as
// the agent's bridge monitor checks and repairs it.
type GatewayLink struct {
	ns    *Namespace
	name  string
	addrs []*net.IPNet
}

// NewGatewayLink returns the interface name in ns, which must carry addrs
// (interface addresses, as for ConfigureGateway).
func NewGatewayLink(ns *Namespace, name string, addrs []*net.IPNet) *GatewayLink {
	return &GatewayLink{ns: ns, name: name, addrs: addrs}
}

// Status returns the interface's index (0 when it does not exist) and
// whether it is up with every address.
func (g *GatewayLink) Status() (index int, configured bool, err error) {
	h := g.ns.handle
	link, err := h.LinkByName(g.name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) || errors.Is(err, unix.ENODEV) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("look up gateway interface %s: %w", g.name, err)
	}
	index = link.Attrs().Index
	if link.Attrs().Flags&net.FlagUp == 0 {
		return index, false, nil
	}
	have, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return index, false, fmt.Errorf("list addresses of gateway interface %s: %w", g.name, err)
	}
	for _, want := range g.addrs {
		if !hasAddr(have, want) {
			return index, false, nil
		}
	}
	return index, true, nil
}

// Configure is ConfigureGateway, as at start-up, and returns the
// interface's index.
func (g *GatewayLink) Configure(timeout time.Duration) (index int, err error) {
	return configureGateway(g.ns.handle, g.name, g.addrs, timeout)
}
