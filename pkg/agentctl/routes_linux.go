package agentctl

import (
	"github.com/noderoute/noderoute/pkg/route"
)

// netlinkRoutes lists routes through netlink, in the namespace at nsPath
// or, when it is empty, in agentctl's own.
func netlinkRoutes(nsPath string) (RouteLister, func(), error) {
	var ns *route.Namespace
	var err error
	if nsPath == "" {
		ns, err = route.CurrentNamespace()
	} else {
		ns, err = route.NamespaceFromPath(nsPath)
	}
	if err != nil {
		return nil, nil, err
	}
	// The gateway interface is only used to add routes.
	return route.NewClient(ns, ""), ns.Close, nil
}
