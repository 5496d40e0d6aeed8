package noderoute

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
)

func (c *Controller) worker(ctx context.Context) {
	for c.processNextItem() {
	}
}

// maxBatch bounds how many queued Nodes one pass of the worker syncs
// together.
const maxBatch = 1000

// processNextItem takes the next Node from the queue, plus those queued
// behind it, and syncs them as one batch: a burst of Node events (a
// relist, many Nodes joining) then costs a few bundles and no OpenFlow
// round trip between routes, while a single event is synced alone at once.
func (c *Controller) processNextItem() bool {
	keys, quit := c.takeBatch()
	if quit {
		return false
	}
	start := time.Now()
	errs := c.syncNodes(keys)
	for _, k := range keys {
		err := errs[k]
		c.observe(SyncNode, start, err)
		if err != nil {
			klog.ErrorS(err, "Sync failed, will retry", "node", k, "retries", c.queue.NumRequeues(k))
			c.queue.AddRateLimited(k)
		} else {
			c.queue.Forget(k)
		}
		c.queue.Done(k)
	}
	return true
}

// takeBatch waits for the next key and takes, without waiting, up to
// maxBatch-1 more; quit reports that the queue shut down.
func (c *Controller) takeBatch() (keys []string, quit bool) {
	key, quit := c.queue.Get()
	if quit {
		return nil, true
	}
	keys = []string{key}
	// Len counts keys waiting, not the ones being processed; with one
	// worker, Get returns at once while it is positive.
	for len(keys) < maxBatch && c.queue.Len() > 0 {
		next, quit := c.queue.Get()
		if quit {
			break
		}
		keys = append(keys, next)
	}
	return keys, false
}

// syncNodes makes the data plane match what the lister says of the Nodes in
// names, in phases across all of them (see applyAll), and returns the errors
// by Node name. It is idempotent: it compares with what is installed and
// changes only the difference; routes edited by hand are put right by
// reconcileRoutes. The local Node goes first, so that the overlap checks
// know its pod CIDRs. The claims of Nodes that fail are taken back. The
// outcome is published for State and Stats.
func (c *Controller) syncNodes(names []string) map[string]error {
	nodes, errs := c.lookupNodes(names)

	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.publish()

	if node, ok := nodes[c.localNode]; ok {
		// No flow, no route to ourselves; if this name was a remote
		// Node's before (a Node renamed to ours), drop what it had.
		if err := c.applyAll([]string{c.localNode}, map[string][]podSubnet{})[c.localNode]; err != nil {
			errs[c.localNode] = err
		} else if node != nil {
			c.updateLocalSubnets(node)
		}
		delete(nodes, c.localNode)
	}
	order, plan := c.planBatch(names, nodes)
	for name, err := range c.applyAll(order, plan) {
		errs[name] = err
	}
	return errs
}

// lookupNodes reads the Nodes in names from the cache: nodes holds those
// found, and nil for those deleted; errs the ones that could not be read.
func (c *Controller) lookupNodes(names []string) (nodes map[string]*corev1.Node, errs map[string]error) {
	errs = map[string]error{}
	nodes = map[string]*corev1.Node{}
	for _, name := range names {
		node, err := c.lister.Get(name)
		switch {
		case apierrors.IsNotFound(err):
			nodes[name] = nil
		case err != nil:
			errs[name] = kindError(ErrorKindNodeCache, fmt.Errorf("get Node %s from cache: %w", name, err))
		default:
			nodes[name] = node
		}
	}
	return nodes, errs
}
