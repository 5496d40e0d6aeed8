// Package route installs the onlink routes to remote Nodes' pod CIDRs and
// configures the gateway interface, through netlink.
package route

import (
	"errors"
	"net"
)

// Protocol is the route protocol number that marks the routes this agent
// owns (see /etc/iproute2/rt_protos: 0-4 are the kernel's, and the numbers
// known to iproute2 stay well below this one). Routes with any other
// protocol are never touched. iproute2 6.1 has no name for it and prints
// "proto 94".
const Protocol = 0x5e // 94

// ErrForeignRoute is wrapped by the error EnsureRoute returns when the main
// table already holds a route to the same destination (at the metric our
// route would take) that carries another protocol. Replacing it would
// silently take over a route someone else manages, so the caller gets an
// error to report instead.
var ErrForeignRoute = errors.New("a route with another protocol exists for this destination")

// Route is one route the agent owns: <Dst> via <Gateway> dev <gateway
// interface> onlink proto Protocol.
type Route struct {
	Dst     *net.IPNet
	Gateway net.IP
}

// Interface is the route client the controller uses. Implementations are
// safe for concurrent use.
//
// Destinations must be network prefixes (no host bits set, e.g. as returned
// by net.ParseCIDR) and the gateway must be of the same address family;
// anything else is an error, as it would be from the kernel.
type Interface interface {
	// EnsureRoute installs or replaces the route to dst via gw on the
	// gateway interface, in the main table. It is idempotent. If a route to
	// dst with another protocol is in the way, it is left alone and the
	// error wraps ErrForeignRoute.
	EnsureRoute(dst *net.IPNet, gw net.IP) error
	// DeleteRoute removes our route to dst from the main table. A missing
	// route is not an error; a route to dst that we do not own is left
	// alone.
	DeleteRoute(dst *net.IPNet) error
	// ListRoutes returns every route in the main table that carries our
	// protocol, in both address families, whatever its device. It returns
	// an empty result, not an error, when there are none. The order is
	// unspecified.
	ListRoutes() ([]Route, error)
}
