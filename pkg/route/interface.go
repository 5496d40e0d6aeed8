// Package route installs the onlink routes to remote Nodes' pod CIDRs and
// configures the gateway interface, through netlink.
package route

import "net"

// Protocol is the route protocol number that marks the routes this agent
// owns (see /etc/iproute2/rt_protos: 0-4 are the kernel's, and the numbers
// known to iproute2 stay well below this one). Routes with any other
// protocol are never touched.
const Protocol = 0x5e // 94

// Route is one route the agent owns: <Dst> via <Gateway> dev <gateway
// interface> onlink proto Protocol.
type Route struct {
	Dst     *net.IPNet
	Gateway net.IP
}

// Interface is the route client the controller uses.
type Interface interface {
	// EnsureRoute installs or replaces the route to dst via gw on the
	// gateway interface. It is idempotent.
	EnsureRoute(dst *net.IPNet, gw net.IP) error
	// DeleteRoute removes our route to dst. A missing route is not an
	// error; a route to dst that we do not own is left alone.
	DeleteRoute(dst *net.IPNet) error
	// ListRoutes returns every route that carries our protocol, in both
	// address families.
	ListRoutes() ([]Route, error)
}
