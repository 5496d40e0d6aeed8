package agent

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/noderoute/noderoute/pkg/route"
)

// netlinkGateway is the gatewayLink of a real interface.
type netlinkGateway struct {
	handle *netlink.Handle
	name   string
	addrs  []*net.IPNet
}

func newNetlinkGateway(handle *netlink.Handle, name string, addrs []*net.IPNet) *netlinkGateway {
	return &netlinkGateway{handle: handle, name: name, addrs: addrs}
}

// Status implements gatewayLink.
func (g *netlinkGateway) Status() (int, bool, error) {
	h := g.netlink()
	link, err := h.LinkByName(g.name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) || errors.Is(err, unix.ENODEV) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("look up gateway interface %s: %w", g.name, err)
	}
	index := link.Attrs().Index
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

// Configure implements gatewayLink with route.ConfigureGateway, as at
// start-up.
func (g *netlinkGateway) Configure(timeout time.Duration) (int, error) {
	if err := route.ConfigureGateway(g.handle, g.name, g.addrs, timeout); err != nil {
		return 0, err
	}
	link, err := g.netlink().LinkByName(g.name)
	if err != nil {
		return 0, fmt.Errorf("look up gateway interface %s: %w", g.name, err)
	}
	return link.Attrs().Index, nil
}

// netlink returns the handle, the current namespace's for nil as in
// route.ConfigureGateway.
func (g *netlinkGateway) netlink() *netlink.Handle {
	if g.handle == nil {
		return &netlink.Handle{}
	}
	return g.handle
}

func hasAddr(have []netlink.Addr, want *net.IPNet) bool {
	wantOnes, wantBits := want.Mask.Size()
	for _, a := range have {
		if a.IPNet == nil || !a.IP.Equal(want.IP) {
			continue
		}
		if ones, bits := a.Mask.Size(); ones == wantOnes && bits == wantBits {
			return true
		}
	}
	return false
}
