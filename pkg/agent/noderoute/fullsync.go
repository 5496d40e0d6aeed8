package noderoute

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// maxInitialSyncAttempts bounds how often the first full sync is retried
// because some Nodes failed. Until it succeeds, flows of earlier rounds stay
// (so a transient failure opens no gap); after the last attempt the failed
// Nodes go to the rate-limited queue and the clean-up proceeds, so that one
// broken Node cannot hold the whole agent back.
const maxInitialSyncAttempts = 5

// firstFullSync is what the controller keeps while its first full sync runs
// (Controller.firstSync).
type firstFullSync struct {
	// kernelRoutes is a snapshot of our routes already in the kernel
	// (destination -> gateway), left by an earlier run: those need no new
	// netlink call. Each attempt takes it again.
	kernelRoutes map[string]string
	// phases collects the time spent in each phase of applyAll, summed
	// over attempts.
	phases applyPhases
}

// initialSync syncs every Node in the cache, then deletes flows of earlier
// rounds and routes of ours that no Node wants. Failures that concern the
// whole data plane (OVS or netlink unreachable) are retried until ctx ends.
func (c *Controller) initialSync(ctx context.Context) error {
	start := time.Now()
	c.mu.Lock()
	c.firstSync = &firstFullSync{}
	c.mu.Unlock()
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}
	for attempt := 1; ; attempt++ {
		attemptStart := time.Now()
		failed, err := c.syncAll(attempt >= maxInitialSyncAttempts)
		c.observe(SyncFull, attemptStart, err)
		if err == nil {
			for _, name := range failed {
				c.queue.AddRateLimited(name)
			}
			break
		}
		delay := backoff.Step()
		klog.ErrorS(err, "Full sync failed, retrying", "attempt", attempt, "retryIn", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("first full sync: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
	nodes, subnets := c.installedCounts()
	c.mu.Lock()
	phases := c.firstSync.phases
	c.firstSync = nil
	c.mu.Unlock()
	// The phases are applyAll's (summed over attempts): responders in,
	// routes in, old responders out. The rest of the duration is reading
	// the cache, planning, and deleting stale flows and unwanted routes.
	klog.InfoS("First full sync done", "remoteNodes", nodes, "subnets", subnets, "duration", time.Since(start),
		"flowsPhase", phases[phaseFlows], "routesPhase", phases[phaseRoutes], "oldFlowsPhase", phases[phaseOldFlows])
	close(c.fullSyncDone)
	return nil
}

// syncAll syncs every Node in the cache and then cleans up what earlier runs
// left, unless some Nodes failed and allowPartial is false. It returns the
// Nodes that failed (each error is logged) and an error when the pass did
// not reach the clean-up or the clean-up failed. It runs during the first
// full sync only (c.firstSync is set).
func (c *Controller) syncAll(allowPartial bool) (failed []string, err error) {
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		return nil, kindError(ErrorKindNodeCache, fmt.Errorf("list Nodes: %w", err))
	}
	existing, err := c.routes.ListRoutes()
	if err != nil {
		return nil, kindError(ErrorKindRoutes, fmt.Errorf("list our routes: %w", err))
	}
	kernel := make(map[string]string, len(existing))
	for _, r := range existing {
		kernel[r.Dst.String()] = r.Gateway.String()
	}
	c.mu.Lock()
	c.firstSync.kernelRoutes = kernel
	c.mu.Unlock()

	// One batch: every Node's flows in one bundle, then every route back
	// to back (see syncNodes).
	names := localFirst(nodes, c.localNode)
	start := time.Now()
	errs := c.syncNodes(names)
	for _, name := range names {
		c.observe(SyncNode, start, errs[name])
		if errs[name] != nil {
			klog.ErrorS(errs[name], "Sync failed", "node", name)
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 && !allowPartial {
		return failed, kindError(ErrorKindPartial, fmt.Errorf("%d of %d Nodes failed: %v", len(failed), len(nodes), failed))
	}
	if err := c.flows.DeleteStaleFlows(); err != nil {
		return failed, kindError(ErrorKindFlows, err)
	}
	_, _, err = c.reconcileRoutes()
	return failed, err
}

// localFirst returns the names of nodes sorted, the local Node first, so
// that overlap checks know its CIDRs.
func localFirst(nodes []*corev1.Node, localNode string) []string {
	sort.Slice(nodes, func(i, j int) bool {
		if (nodes[i].Name == localNode) != (nodes[j].Name == localNode) {
			return nodes[i].Name == localNode
		}
		return nodes[i].Name < nodes[j].Name
	})
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return names
}

// inFirstFullSync reports whether the first full sync is running. Callers
// hold c.mu.
func (c *Controller) inFirstFullSync() bool { return c.firstSync != nil }

// routeInKernel reports whether the first full sync found s's route already
// in the kernel, with s's gateway. Callers hold c.mu.
func (c *Controller) routeInKernel(s podSubnet) bool {
	return c.firstSync != nil && c.firstSync.kernelRoutes[s.key()] == s.Gateway.String()
}

// installLogLevel is the verbosity of the per-Node "Installed" line: during
// the first full sync there is one such line per Node of the cluster, so
// they go to -v=4 and the full sync logs its counts instead; afterwards
// every change is logged. Callers hold c.mu.
func (c *Controller) installLogLevel() klog.Level {
	if c.inFirstFullSync() {
		return 4
	}
	return 0
}

// addPhase adds the time since start to the first full sync's phase
// (nothing outside it). Callers hold c.mu.
func (c *Controller) addPhase(phase int, start time.Time) {
	if c.firstSync != nil {
		c.firstSync.phases[phase] += time.Since(start)
	}
}

// applyPhases adds up how long applyAll spent in each of its phases; the
// first full sync logs it.
type applyPhases [3]time.Duration

const (
	phaseFlows = iota
	phaseRoutes
	phaseOldFlows
)
