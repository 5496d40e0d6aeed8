package route

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpAttempts bounds the retries of a route dump that the kernel flags as
// interrupted (NLM_F_DUMP_INTR: the table changed while it was being read).
// netlink then returns no routes at all, so retrying is the only way to get
// a consistent answer; a table that keeps changing faster than we can read
// it is reported as an error rather than looped on forever.
const dumpAttempts = 5

// Client is the netlink implementation of Interface. It installs routes on
// the gateway interface named at construction, in the network namespace it
// was given.
type Client struct {
	handle           *netlink.Handle
	gatewayInterface string

	// mu guards linkIndex, the cached ifindex of the gateway interface
	// (0 when not resolved yet). Caching saves a lookup per route; the
	// cache is dropped when the kernel answers ENODEV, because OVS
	// recreates its internal port with a new ifindex when it restarts.
	mu        sync.Mutex
	linkIndex int
}

var _ Interface = (*Client)(nil)

// NewClient returns a Client that installs routes on gatewayInterface in
// ns, through its netlink handle, until ns is closed. The gateway interface
// is looked up on first use, so it need not exist yet.
func NewClient(ns *Namespace, gatewayInterface string) *Client {
	return &Client{handle: ns.handle, gatewayInterface: gatewayInterface}
}

// EnsureRoute installs or replaces dst via gw dev <gateway interface> onlink
// proto Protocol in the main table.
//
// It first tries an exclusive add, which installs a new route without a dump
// of the table. Only when the kernel answers that a route with the same key
// exists does it read the routes to dst, to tell ours (replaced, which
// covers a changed gateway or interface) from a foreign one (left alone,
// ErrForeignRoute). A plain RouteReplace would overwrite a foreign route
// with the same destination and metric. A foreign route added between the
// dump and the replace is not detected; closing that window would need a
// kernel-side compare-and-swap that rtnetlink does not offer.
//
// Callers reconciling many routes that already exist should diff against
// ListRoutes first: each EnsureRoute of an existing route costs a dump.
func (c *Client) EnsureRoute(dst *net.IPNet, gw net.IP) error {
	dst, err := canonicalDst(dst)
	if err != nil {
		return err
	}
	gw, err = canonicalGateway(dst, gw)
	if err != nil {
		return err
	}
	return c.withGatewayIndex(func(linkIndex int) error {
		r := &netlink.Route{
			Family:    familyOf(dst.IP),
			Dst:       dst,
			Gw:        gw,
			LinkIndex: linkIndex,
			// The gateway is the first address of the remote Node's
			// pod CIDR, which is not on any local subnet: onlink
			// tells the kernel to resolve it on the gateway
			// interface anyway (OVS answers its ARP or NDP).
			Flags:    int(netlink.FLAG_ONLINK),
			Protocol: Protocol,
			Scope:    netlink.SCOPE_UNIVERSE,
			Table:    unix.RT_TABLE_MAIN,
		}
		err := c.handle.RouteAdd(r)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route %s via %s dev %s: %w", dst, gw, c.gatewayInterface, err)
		}
		existing, err := c.listFamily(r.Family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return fmt.Errorf("add route %s via %s: list existing routes: %w", dst, gw, err)
		}
		var foreign []netlink.RouteProtocol
		for i := range existing {
			if !sameDst(&existing[i], dst) {
				continue
			}
			if existing[i].Protocol == Protocol {
				// We always install at the default metric, so
				// an existing route of ours is the one the
				// replace below targets.
				foreign = nil
				break
			}
			foreign = append(foreign, existing[i].Protocol)
		}
		if len(foreign) > 0 {
			return fmt.Errorf("add route %s via %s: route to %s with protocol %v exists: %w", dst, gw, dst, foreign, ErrForeignRoute)
		}
		if err := c.handle.RouteReplace(r); err != nil {
			return fmt.Errorf("replace route %s via %s dev %s: %w", dst, gw, c.gatewayInterface, err)
		}
		return nil
	})
}

// maxOwnRoutesPerDst bounds the deletes DeleteRoute sends for one
// destination. We install one route per destination; more can only come from
// someone adding routes with our protocol at other metrics by hand.
const maxOwnRoutesPerDst = 16

// DeleteRoute deletes the routes to exactly dst in the main table that carry
// our protocol. The delete request names the protocol, so the kernel itself
// refuses to delete a foreign route (IPv4 and IPv6 both match rtm_protocol
// when it is set), and no dump of the table is needed: that matters at
// thousands of routes, where a dump costs milliseconds. The kernel deletes
// one matching route per request, so it repeats until none is left (ESRCH).
func (c *Client) DeleteRoute(dst *net.IPNet) error {
	dst, err := canonicalDst(dst)
	if err != nil {
		return err
	}
	r := &netlink.Route{
		Family:   familyOf(dst.IP),
		Dst:      dst,
		Protocol: Protocol,
		Table:    unix.RT_TABLE_MAIN,
	}
	for range maxOwnRoutesPerDst {
		err := c.handle.RouteDel(r)
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete route %s: %w", dst, err)
		}
	}
	return fmt.Errorf("delete route %s: more than %d routes with protocol %d", dst, maxOwnRoutesPerDst, Protocol)
}

// ListRoutes returns the routes in the main table that carry our protocol,
// IPv4 first, then IPv6.
func (c *Client) ListRoutes() ([]Route, error) {
	var out []Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := c.listFamily(family, ownFilter(), ownFilterMask)
		if err != nil {
			return nil, fmt.Errorf("list routes with protocol %d: %w", Protocol, err)
		}
		for i := range routes {
			out = append(out, Route{Dst: routeDst(&routes[i], family), Gateway: routes[i].Gw})
		}
	}
	return out, nil
}

// ownFilterMask and ownFilter select the routes we own: our protocol in the
// main table. Without RT_FILTER_TABLE netlink would skip non-main tables by
// itself, but with it an unset Table would mean every table.
const ownFilterMask = netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TABLE

func ownFilter() *netlink.Route {
	return &netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN}
}

// listFamily dumps the routes of one family that match filter, retrying
// while the kernel reports the dump as interrupted.
func (c *Client) listFamily(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var err error
	for range dumpAttempts {
		var routes []netlink.Route
		routes, err = c.handle.RouteListFiltered(family, filter, mask)
		if err == nil {
			return routes, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("route dump interrupted %d times: %w", dumpAttempts, err)
}

// withGatewayIndex runs op with the gateway interface's ifindex. If op fails
// with ENODEV the cached index is stale (the interface was deleted, and
// maybe recreated with a new index): the name is resolved again and op is
// retried once with the new index.
func (c *Client) withGatewayIndex(op func(linkIndex int) error) error {
	index, err := c.gatewayIndex(0)
	if err != nil {
		return err
	}
	err = op(index)
	if !errors.Is(err, unix.ENODEV) {
		return err
	}
	newIndex, lookupErr := c.gatewayIndex(index)
	if lookupErr != nil {
		return fmt.Errorf("%w (after %w)", lookupErr, err)
	}
	if newIndex == index {
		// Same interface as before, so ENODEV is not about a stale
		// index and a retry would fail the same way.
		return err
	}
	return op(newIndex)
}

// gatewayIndex returns the cached ifindex of the gateway interface, looking
// the name up if nothing is cached or if the cached index is stale (equal to
// the index a caller saw fail).
func (c *Client) gatewayIndex(stale int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.linkIndex != 0 && c.linkIndex != stale {
		return c.linkIndex, nil
	}
	c.linkIndex = 0
	link, err := c.handle.LinkByName(c.gatewayInterface)
	if err != nil {
		return 0, fmt.Errorf("look up gateway interface %s: %w", c.gatewayInterface, err)
	}
	c.linkIndex = link.Attrs().Index
	return c.linkIndex, nil
}

func familyOf(ip net.IP) int {
	if ip.To4() != nil {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// routeDst returns r's destination, which netlink leaves nil for a default
// route (no RTA_DST), as the zero prefix of family.
func routeDst(r *netlink.Route, family int) *net.IPNet {
	if r.Dst != nil {
		return r.Dst
	}
	if family == netlink.FAMILY_V4 {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

// sameDst reports whether r's destination is exactly dst. It compares in Go
// rather than with RT_FILTER_DST because netlink's filter never matches a
// default route (nil Dst).
func sameDst(r *netlink.Route, dst *net.IPNet) bool {
	rd := routeDst(r, familyOf(dst.IP))
	rOnes, rBits := rd.Mask.Size()
	ones, bits := dst.Mask.Size()
	return rOnes == ones && rBits == bits && rd.IP.Equal(dst.IP)
}
