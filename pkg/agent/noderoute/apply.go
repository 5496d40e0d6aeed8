package noderoute

import (
	"fmt"
	"net"
	"time"

	"k8s.io/klog/v2"
)

// applyAll installs, for every Node in names, the subnets plan gives it and
// removes what it no longer wants, in phases across all of them:
//
//  1. the responders of the new and the old subnets, one InstallFlows call
//     (a bundle) for all Nodes: a new route is usable only once its gateway
//     answers ARP or NDP, and an old route must not outlive its responder;
//  2. the new routes, then the deletion of the old ones, back to back with
//     no OpenFlow call in between (ovs-vswitchd re-reads the routing table
//     after route changes: waiting for it once per Node made the full sync
//     quadratic, see docs/performance.md);
//  3. the removal of the old responders, again one call.
//
// A Node that fails before its routes are all in place keeps what it had
// (c.installed) and its error is returned; the others go on. Callers hold
// c.mu.
func (c *Controller) applyAll(names []string, plan map[string][]podSubnet) map[string]error {
	errs := map[string]error{}
	changing := make([]string, 0, len(names))
	during := map[string][]net.IP{}
	for _, name := range names {
		want, have := plan[name], c.installed[name]
		if len(want) == 0 && len(have) == 0 {
			continue
		}
		changing = append(changing, name)
		during[name] = gatewaysOf(want, have)
	}
	phaseStart := time.Now()
	c.installFlows(during, errs, "install ARP/NDP responders")
	c.addPhase(phaseFlows, phaseStart)

	phaseStart = time.Now()
	released := false
	for _, name := range changing {
		if errs[name] != nil {
			continue
		}
		r, err := c.applyRoutes(name, plan[name], c.installed[name])
		released = released || r
		if err != nil {
			errs[name] = err
		}
	}

	c.addPhase(phaseRoutes, phaseStart)

	phaseStart = time.Now()
	final := map[string][]net.IP{}
	for _, name := range changing {
		want, have := plan[name], c.installed[name]
		if errs[name] == nil && len(gatewaysOf(have)) > 0 && !sameSubnets(want, have) {
			final[name] = gatewaysOf(want)
		}
	}
	finalErrs := map[string]error{}
	c.installFlows(final, finalErrs, "remove old ARP/NDP responders")
	c.addPhase(phaseOldFlows, phaseStart)

	c.recordOutcome(changing, plan, errs, finalErrs)
	if released || len(errs) > 0 {
		c.requeueBlocked(errs)
	}
	return errs
}

// installFlows sets the responders of every Node in gateways in one call.
// If that fails and there are several Nodes, it tries them one at a time,
// so that one Node OVS refuses does not hold back the others. Errors go to
// errs by Node name.
func (c *Controller) installFlows(gateways map[string][]net.IP, errs map[string]error, what string) {
	if len(gateways) == 0 {
		return
	}
	err := c.flows.InstallFlows(gateways)
	if err == nil {
		return
	}
	if len(gateways) > 1 {
		klog.ErrorS(err, "Batch of flow changes failed, retrying Node by Node", "nodes", len(gateways))
		for name, gws := range gateways {
			if err := c.flows.InstallNodeFlows(name, gws); err != nil {
				errs[name] = kindError(ErrorKindFlows, fmt.Errorf("%s for node %s: %w", what, name, err))
			}
		}
		return
	}
	for name := range gateways {
		errs[name] = kindError(ErrorKindFlows, fmt.Errorf("%s for node %s: %w", what, name, err))
	}
}

// applyRoutes adds the routes of want that are missing, then deletes those
// of have that want no longer holds. released reports whether any was
// deleted.
func (c *Controller) applyRoutes(name string, want, have []podSubnet) (released bool, err error) {
	for _, s := range want {
		if containsSubnet(have, s) || c.routeInKernel(s) {
			continue
		}
		if err := c.routes.EnsureRoute(s.CIDR, s.Gateway); err != nil {
			return false, kindError(ErrorKindRoutes, fmt.Errorf("install route %s via %s for node %s: %w", s.CIDR, s.Gateway, name, err))
		}
	}
	for _, old := range have {
		if containsSubnet(want, old) {
			continue
		}
		if err := c.routes.DeleteRoute(old.CIDR); err != nil {
			return released, kindError(ErrorKindRoutes, fmt.Errorf("delete route %s of node %s: %w", old.CIDR, name, err))
		}
		released = true
	}
	return released, nil
}

// recordInstalled notes that name now has exactly subnets in place.
func (c *Controller) recordInstalled(name string, subnets []podSubnet) {
	have := c.installed[name]
	c.claims.set(name, subnets)
	if len(subnets) == 0 {
		delete(c.installed, name)
		klog.InfoS("Removed routes and flows of node", "node", name)
		return
	}
	c.installed[name] = subnets
	if !sameSubnets(subnets, have) {
		klog.V(c.installLogLevel()).InfoS("Installed routes and flows of node", "node", name, "podCIDRs", subnetKeys(subnets))
	}
}

// recordOutcome notes what applyAll achieved for each Node in changing:
// what it planned where its routes are in place, what it had elsewhere.
// Errors of the last phase (old responders not removed) join errs.
func (c *Controller) recordOutcome(changing []string, plan map[string][]podSubnet, errs, finalErrs map[string]error) {
	for _, name := range changing {
		if errs[name] != nil {
			// Its routes are not (all) as planned: it keeps what it
			// had, claims included.
			c.claims.set(name, c.installed[name])
			continue
		}
		// Its routes are as planned, so that is what is installed
		// (the route reconcile goes by it). Old responders that could
		// not be removed go at the retry, whose first phase diffs
		// against them.
		c.recordInstalled(name, plan[name])
		if err := finalErrs[name]; err != nil {
			errs[name] = err
		}
	}
}

// requeueBlocked queues the blocked Nodes again after a CIDR was released or
// a Node failed: one waiting for a CIDR that overlapped a released one, or
// one a failed Node no longer claims, may now get it. Not the failed ones:
// they are retried rate-limited, and an immediate Add would bypass that.
func (c *Controller) requeueBlocked(errs map[string]error) {
	for blocked := range c.blocked {
		if errs[blocked] == nil {
			c.queue.Add(blocked)
		}
	}
}
