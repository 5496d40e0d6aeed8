package noderoute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// resync is the periodic pass: it repairs our routes (see reconcileRoutes)
// and logs one line with the counts.
func (c *Controller) resync() {
	start := time.Now()
	restored, deleted, err := c.reconcileRoutes()
	c.observe(SyncResync, start, err)
	if err != nil {
		klog.ErrorS(err, "Periodic route reconciliation failed", "duration", time.Since(start))
		return
	}
	nodes, subnets := c.installedCounts()
	klog.InfoS("Periodic resync done", "remoteNodes", nodes, "subnets", subnets,
		"routesRestored", restored, "routesDeleted", deleted, "duration", time.Since(start))
}

// RequestRouteReconcile asks for a route reconcile (see reconcileRoutes)
// soon, without waiting for it: the route watcher calls it when one of our
// routes is deleted or replaced, the bridge monitor when the gateway
// interface was recreated. Requests made before the first full sync are
// served after it; requests made while one is pending are merged into it.
func (c *Controller) RequestRouteReconcile() {
	select {
	case c.reconcileRequests <- struct{}{}:
	default:
	}
}

// serveReconcileRequests runs reconcileRoutes for each request until ctx
// ends. It starts after the first full sync, whose own reconcile covers
// earlier requests; before it, c.installed is incomplete and a reconcile
// would delete the routes of Nodes not synced yet.
func (c *Controller) serveReconcileRequests(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.reconcileRequests:
		}
		start := time.Now()
		restored, deleted, err := c.reconcileRoutes()
		c.observe(SyncRepair, start, err)
		if err != nil {
			klog.ErrorS(err, "Route reconcile on request failed", "duration", time.Since(start))
			continue
		}
		if restored > 0 || deleted > 0 {
			klog.InfoS("Routes repaired", "routesRestored", restored, "routesDeleted", deleted, "duration", time.Since(start))
		}
	}
}

// reconcileRoutes compares our routes in the kernel with what the Nodes
// want, in one listing: it deletes routes with our protocol that no Node
// wants (left by an earlier run for Nodes deleted meanwhile, or added by
// hand) and puts back wanted ones that were deleted or changed by hand. It
// returns how many routes it restored and deleted. It holds c.mu, so that
// no batch changes the routes meanwhile.
func (c *Controller) reconcileRoutes() (restored, deleted int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wanted := map[string]podSubnet{}
	for _, subnets := range c.installed {
		for _, s := range subnets {
			wanted[s.key()] = s
		}
	}
	routes, err := c.routes.ListRoutes()
	if err != nil {
		return 0, 0, kindError(ErrorKindRoutes, fmt.Errorf("list our routes: %w", err))
	}
	correct := map[string]bool{}
	var errs []error
	for _, r := range routes {
		if s, ok := wanted[r.Dst.String()]; ok {
			correct[s.key()] = s.Gateway.Equal(r.Gateway)
			continue
		}
		if err := c.routes.DeleteRoute(r.Dst); err != nil {
			errs = append(errs, fmt.Errorf("delete unwanted route %s: %w", r.Dst, err))
			continue
		}
		deleted++
		klog.InfoS("Deleted route no Node wants", "dst", r.Dst, "gateway", r.Gateway)
	}
	for key, s := range wanted {
		if correct[key] {
			continue
		}
		if err := c.routes.EnsureRoute(s.CIDR, s.Gateway); err != nil {
			// One route in the way (a foreign route where ours
			// was) must not keep the others from being restored.
			errs = append(errs, fmt.Errorf("restore route %s via %s: %w", s.CIDR, s.Gateway, err))
			continue
		}
		restored++
		klog.InfoS("Restored route", "dst", s.CIDR, "gateway", s.Gateway)
	}
	return restored, deleted, kindError(ErrorKindRoutes, errors.Join(errs...))
}
