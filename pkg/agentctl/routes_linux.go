package agentctl

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/noderoute/noderoute/pkg/route"
)

// netlinkRoutes lists routes through netlink, in the namespace at nsPath
// or, when it is empty, in agentctl's own.
func netlinkRoutes(nsPath string) (RouteLister, func(), error) {
	if nsPath == "" {
		// The gateway interface is only used to add routes.
		return route.NewClient(nil, ""), func() {}, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("netlink socket in network namespace %s: %w", nsPath, err)
	}
	return route.NewClient(h, ""), func() { h.Close(); ns.Close() }, nil
}
