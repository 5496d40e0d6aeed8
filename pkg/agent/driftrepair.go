package agent

import (
	"context"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/metrics"
	"github.com/noderoute/noderoute/pkg/route"
)

// RouteReconciler is what the watchers ask for a route reconcile
// (*noderoute.Controller).
type RouteReconciler interface {
	RequestRouteReconcile()
}

// FlowChecker runs the periodic flow check (*openflow.OFClient).
type FlowChecker interface {
	RunFlowCheck(ctx context.Context, period time.Duration)
}

// StartDriftRepair starts what puts back, until ctx ends, changes made to
// the data plane behind the agent's back:
//
//   - the route watcher: a route of ours deleted or replaced by hand asks
//     ctrl for a route reconcile at once (the periodic resync is the
//     fallback);
//   - the gateway interface watcher: IPv4 routes through it vanish
//     silently when it goes down, and are put back when it comes up;
//   - the flow check, every flowCheckPeriod (0: none): flows of ours
//     deleted by hand are re-added.
//
// The watchers work in the network namespace ns (the agent's own, which
// they watch with CAP_NET_ADMIN alone; another one needs CAP_SYS_ADMIN to
// enter it). Failures to start a watcher are logged.
// watcherRunning, if not nil, is told whether each watcher (named by
// metrics.Watchers) has its subscription in place. wait returns once all
// of them have stopped.
func StartDriftRepair(ctx context.Context, ns *route.Namespace, gatewayInterface string, ctrl RouteReconciler, flows FlowChecker, flowCheckPeriod time.Duration, watcherRunning func(watcher string, running bool)) (wait func()) {
	status := func(watcher string) func(bool) {
		if watcherRunning == nil {
			return nil
		}
		return func(running bool) { watcherRunning(watcher, running) }
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := route.WatchRoutes(ctx, ns, ctrl.RequestRouteReconcile, status(metrics.WatcherRoutes)); err != nil {
			klog.ErrorS(err, "Route watcher not running: routes changed by hand are repaired by the periodic resync only")
		}
	})
	wg.Go(func() {
		if err := route.WatchLinkUp(ctx, ns, gatewayInterface, ctrl.RequestRouteReconcile, status(metrics.WatcherGatewayInterface)); err != nil {
			klog.ErrorS(err, "Gateway interface watcher not running", "interface", gatewayInterface)
		}
	})
	if flowCheckPeriod > 0 {
		wg.Go(func() { flows.RunFlowCheck(ctx, flowCheckPeriod) })
	}
	return wg.Wait
}
