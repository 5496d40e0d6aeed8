package noderoute

import "time"

// SyncType names what a sync covered, for metrics.
type SyncType string

const (
	// SyncNode is one Node's sync (in a batch of syncNodes), from the
	// queue or from a full sync.
	SyncNode SyncType = "node"
	// SyncFull is one attempt at the first full sync: every Node, then
	// the clean-up of what earlier runs left.
	SyncFull SyncType = "full"
	// SyncResync is the periodic pass (every resync period) that compares
	// our routes in the kernel with what the Nodes want and repairs them.
	SyncResync SyncType = "resync"
	// SyncRepair is a route reconcile on request (RequestRouteReconcile:
	// the route watcher saw a route of ours deleted or replaced, or the
	// bridge monitor re-created the gateway interface).
	SyncRepair SyncType = "repair"
)

// Observer receives the controller's measurements; the agent's metrics
// implement it. Calls come from the controller's goroutines and must not
// block.
type Observer interface {
	// ObserveSync reports one sync of the given type, how long it took
	// and how it ended.
	ObserveSync(sync SyncType, duration time.Duration, err error)
}

// SetObserver installs o. Call it before Run.
func (c *Controller) SetObserver(o Observer) { c.observer = o }

func (c *Controller) observe(sync SyncType, start time.Time, err error) {
	if c.observer != nil {
		c.observer.ObserveSync(sync, time.Since(start), err)
	}
}
