// Package noderoute holds the controller that turns the Node objects of the
// cluster into ARP and NDP responder flows and onlink routes on the local
// node.
package noderoute

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

const controllerName = "NodeRouteController"

// Controller watches Nodes and keeps, for every other Node, the responder
// flows (ARP for IPv4, NDP for IPv6) and onlink routes of its pod CIDRs in
// place.
//
// It has the sample-controller shape: informer events enqueue Node names,
// one worker runs the idempotent syncNode for each. A single worker is a
// choice: every change ends in the same OVS connection and netlink socket
// anyway, and one worker keeps the cross-Node checks (overlapping CIDRs)
// free of races.
type Controller struct {
	localNode string
	lister    corelisters.NodeLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	flows     openflow.Client
	routes    route.Interface
	// resyncPeriod is how often routes of ours that no Node wants are
	// looked for, on top of the informer's own resync.
	resyncPeriod time.Duration

	mu sync.Mutex
	// installed holds, per remote Node, the subnets whose flows and
	// routes are in place.
	installed map[string][]podSubnet
	// localSubnets are this node's own pod CIDRs: a remote CIDR that
	// overlaps them would hijack local pod traffic and is refused.
	localSubnets []podSubnet
	// blocked holds Nodes with a CIDR refused because another Node
	// holds an overlapping one; they are synced again when a CIDR is
	// released.
	blocked map[string]bool
	// kernelRoutes is, during the first full sync only, a snapshot of our
	// routes already in the kernel (destination -> gateway), left by an
	// earlier run: those need no new netlink call. Nil afterwards.
	kernelRoutes map[string]string
	// fullSyncDone is closed once the first full sync and the clean-up
	// of what earlier runs left are done.
	fullSyncDone chan struct{}

	// observer, when set, receives sync durations and errors.
	observer Observer
}

// NewController wires a controller to the Node informer and the data plane.
func NewController(localNode string, nodeInformer coreinformers.NodeInformer, flows openflow.Client, routes route.Interface, resyncPeriod time.Duration) (*Controller, error) {
	c := &Controller{
		localNode: localNode,
		lister:    nodeInformer.Lister(),
		synced:    nodeInformer.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "noderoute"}),
		flows:        flows,
		routes:       routes,
		resyncPeriod: resyncPeriod,
		installed:    map[string][]podSubnet{},
		blocked:      map[string]bool{},
		fullSyncDone: make(chan struct{}),
	}
	_, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj interface{}) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("add Node event handler: %w", err)
	}
	return c, nil
}

// enqueue adds the Node's name to the queue. Updates are not filtered on
// podCIDRs: a sync that finds nothing to change costs a map lookup.
func (c *Controller) enqueue(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("cannot get key of %T: %w", obj, err))
		return
	}
	c.queue.Add(key)
}

// FullSyncDone is closed once the first full sync is over.
func (c *Controller) FullSyncDone() <-chan struct{} { return c.fullSyncDone }

// Run waits for the informer cache, syncs every Node once, removes what an
// earlier run left behind, then follows changes until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()

	klog.InfoS("Starting controller", "controller", controllerName, "localNode", c.localNode)
	if !cache.WaitForNamedCacheSync(controllerName, ctx.Done(), c.synced) {
		return fmt.Errorf("%s: Node informer cache did not sync", controllerName)
	}
	if err := c.initialSync(ctx); err != nil {
		return err
	}
	go wait.UntilWithContext(ctx, c.worker, time.Second)
	go wait.UntilWithContext(ctx, func(context.Context) { c.resync() }, c.resyncPeriod)
	<-ctx.Done()
	klog.InfoS("Stopping controller", "controller", controllerName)
	return nil
}

// maxInitialSyncAttempts bounds how often the first full sync is retried
// because some Nodes failed. Until it succeeds, flows of earlier rounds stay
// (so a transient failure opens no gap); after the last attempt the failed
// Nodes go to the rate-limited queue and the clean-up proceeds, so that one
// broken Node cannot hold the whole agent back.
const maxInitialSyncAttempts = 5

// initialSync syncs every Node in the cache, then deletes flows of earlier
// rounds and routes of ours that no Node wants. Failures that concern the
// whole data plane (OVS or netlink unreachable) are retried until ctx ends.
func (c *Controller) initialSync(ctx context.Context) error {
	start := time.Now()
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
	klog.InfoS("First full sync done", "remoteNodes", nodes, "subnets", subnets, "duration", time.Since(start))
	close(c.fullSyncDone)
	return nil
}

// resync is the periodic pass: it repairs our routes (see reconcileRoutes)
// and logs one line with the counts.
func (c *Controller) resync() {
	start := time.Now()
	restored, deleted, err := c.reconcileRoutesCounted()
	c.observe(SyncResync, start, err)
	if err != nil {
		klog.ErrorS(err, "Periodic route reconciliation failed", "duration", time.Since(start))
		return
	}
	nodes, subnets := c.installedCounts()
	klog.InfoS("Periodic resync done", "remoteNodes", nodes, "subnets", subnets,
		"routesRestored", restored, "routesDeleted", deleted, "duration", time.Since(start))
}

// installedCounts returns how many remote Nodes and subnets are installed.
func (c *Controller) installedCounts() (nodes, subnets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.installed {
		subnets += len(s)
	}
	return len(c.installed), subnets
}

// syncAll syncs every Node in the cache and then cleans up what earlier runs
// left, unless some Nodes failed and allowPartial is false. It returns the
// Nodes that failed (each error is logged) and an error when the pass did
// not reach the clean-up or the clean-up failed.
func (c *Controller) syncAll(allowPartial bool) (failed []string, err error) {
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		return nil, kindError(ErrorKindNodeCache, fmt.Errorf("list Nodes: %w", err))
	}
	existing, err := c.routes.ListRoutes()
	if err != nil {
		return nil, kindError(ErrorKindRoutes, fmt.Errorf("list our routes: %w", err))
	}
	c.mu.Lock()
	c.kernelRoutes = map[string]string{}
	for _, r := range existing {
		c.kernelRoutes[r.Dst.String()] = r.Gateway.String()
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.kernelRoutes = nil
		c.mu.Unlock()
	}()

	// The local Node first, so that overlap checks know its CIDRs.
	sort.Slice(nodes, func(i, j int) bool {
		if (nodes[i].Name == c.localNode) != (nodes[j].Name == c.localNode) {
			return nodes[i].Name == c.localNode
		}
		return nodes[i].Name < nodes[j].Name
	})
	for _, n := range nodes {
		start := time.Now()
		err := c.syncNode(n.Name)
		c.observe(SyncNode, start, err)
		if err != nil {
			klog.ErrorS(err, "Sync failed", "node", n.Name)
			failed = append(failed, n.Name)
		}
	}
	if len(failed) > 0 && !allowPartial {
		return failed, kindError(ErrorKindPartial, fmt.Errorf("%d of %d Nodes failed: %v", len(failed), len(nodes), failed))
	}
	if err := c.flows.DeleteStaleFlows(); err != nil {
		return failed, kindError(ErrorKindFlows, err)
	}
	return failed, c.reconcileRoutes()
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNextItem() {
	}
}

func (c *Controller) processNextItem() bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	start := time.Now()
	err := c.syncNode(key)
	c.observe(SyncNode, start, err)
	if err != nil {
		klog.ErrorS(err, "Sync failed, will retry", "node", key, "retries", c.queue.NumRequeues(key))
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// syncNode makes the data plane match what the lister says of one Node. It
// is idempotent: it compares with what is installed and changes only the
// difference. Routes edited by hand are put right by reconcileRoutes.
func (c *Controller) syncNode(name string) error {
	node, err := c.lister.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return kindError(ErrorKindNodeCache, fmt.Errorf("get Node %s from cache: %w", name, err))
	}
	if apierrors.IsNotFound(err) {
		node = nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	if name == c.localNode {
		// No flow, no route to ourselves; if this name was a remote
		// Node's before (a Node renamed to ours), drop what it had.
		if err := c.apply(name, nil); err != nil {
			return err
		}
		if node != nil {
			c.updateLocalSubnets(node)
		}
		return nil
	}
	var want []podSubnet
	if node != nil {
		want = c.wantedSubnets(node)
	}
	return c.apply(name, want)
}

// wantedSubnets returns the Node's usable pod subnets, logging (and leaving
// out) those that are malformed or would clash with others.
func (c *Controller) wantedSubnets(node *corev1.Node) []podSubnet {
	if len(nodePodCIDRs(node)) == 0 {
		klog.V(2).InfoS("Node has no pod CIDR yet, waiting", "node", node.Name)
		return nil
	}
	want, ignored, blockedByRemote := c.desiredSubnets(node)
	for _, ig := range ignored {
		klog.ErrorS(nil, "Ignoring pod CIDR", "node", node.Name, "podCIDR", ig.PodCIDR, "reason", ig.Reason)
	}
	if blockedByRemote {
		c.blocked[node.Name] = true
	} else {
		delete(c.blocked, node.Name)
	}
	return want
}

// desiredSubnets computes, without side effects, the subnets of a remote Node
// the controller wants and the pod CIDRs it leaves out, with the reason;
// blockedByRemote tells whether one was left out because another remote
// Node holds an overlapping CIDR. syncNode and State both use it, so what
// agentctl reports is what the controller does. Callers hold c.mu.
func (c *Controller) desiredSubnets(node *corev1.Node) (want []podSubnet, ignored []IgnoredCIDR, blockedByRemote bool) {
	seen := map[string]bool{}
	for _, cidr := range nodePodCIDRs(node) {
		// One CIDR at a time, to tell which one an error is about.
		subnets, errs := parsePodSubnets([]string{cidr})
		for _, err := range errs {
			ignored = append(ignored, IgnoredCIDR{PodCIDR: cidr, Reason: err.Error()})
		}
		for _, s := range subnets {
			if seen[s.key()] {
				continue
			}
			seen[s.key()] = true
			if owner, clash := c.clash(node.Name, s); clash != "" {
				ignored = append(ignored, IgnoredCIDR{PodCIDR: s.key(), Reason: fmt.Sprintf("overlaps %s of node %s", clash, owner)})
				blockedByRemote = blockedByRemote || owner != c.localNode
				continue
			}
			want = append(want, s)
		}
	}
	return want, ignored, blockedByRemote
}

// clash returns the owner and CIDR of a subnet that s overlaps: this node's
// own, or another remote Node's installed one.
func (c *Controller) clash(nodeName string, s podSubnet) (owner, cidr string) {
	for _, l := range c.localSubnets {
		if overlaps(l.CIDR, s.CIDR) {
			return c.localNode, l.key()
		}
	}
	for other, subnets := range c.installed {
		if other == nodeName {
			continue
		}
		for _, o := range subnets {
			if overlaps(o.CIDR, s.CIDR) {
				return other, o.key()
			}
		}
	}
	return "", ""
}

// apply installs want for a remote Node and removes what it no longer
// wants. New flows go in before new routes (a route is usable only once its
// gateway answers ARP or NDP) and old routes go before old flows.
func (c *Controller) apply(name string, want []podSubnet) error {
	have := c.installed[name]
	if len(want) == 0 && len(have) == 0 {
		return nil
	}
	// Responders for the new and the old subnets while the routes
	// change: a new route is usable only once its gateway answers, and an
	// old route must not outlive its responder. The old responders go at
	// the end (the client diffs, so this costs nothing when none go).
	if err := c.flows.InstallNodeFlows(name, gatewaysOf(want, have)); err != nil {
		return kindError(ErrorKindFlows, fmt.Errorf("install ARP/NDP responders for node %s: %w", name, err))
	}
	for _, s := range want {
		if containsSubnet(have, s) || c.kernelRoutes[s.key()] == s.Gateway.String() {
			continue
		}
		if err := c.routes.EnsureRoute(s.CIDR, s.Gateway); err != nil {
			return kindError(ErrorKindRoutes, fmt.Errorf("install route %s via %s for node %s: %w", s.CIDR, s.Gateway, name, err))
		}
	}
	released := false
	for _, old := range have {
		if containsSubnet(want, old) {
			continue
		}
		if err := c.routes.DeleteRoute(old.CIDR); err != nil {
			return kindError(ErrorKindRoutes, fmt.Errorf("delete route %s of node %s: %w", old.CIDR, name, err))
		}
		released = true
	}
	if err := c.flows.InstallNodeFlows(name, gatewaysOf(want)); err != nil {
		return kindError(ErrorKindFlows, fmt.Errorf("remove old ARP/NDP responders of node %s: %w", name, err))
	}
	if len(want) == 0 {
		delete(c.installed, name)
		klog.InfoS("Removed routes and flows of node", "node", name)
	} else {
		c.installed[name] = want
		if !sameSubnets(want, have) {
			klog.InfoS("Installed routes and flows of node", "node", name, "podCIDRs", subnetKeys(want))
		}
	}
	if released {
		// A Node waiting for a CIDR that overlapped the released one
		// may now get it.
		for blocked := range c.blocked {
			c.queue.Add(blocked)
		}
	}
	return nil
}

// updateLocalSubnets records this node's pod CIDRs and, when they change,
// re-checks every remote Node against them.
func (c *Controller) updateLocalSubnets(node *corev1.Node) {
	subnets, errs := parsePodSubnets(nodePodCIDRs(node))
	for _, err := range errs {
		klog.ErrorS(err, "Local node has an unusable pod CIDR", "node", node.Name)
	}
	if sameSubnets(subnets, c.localSubnets) {
		return
	}
	c.localSubnets = subnets
	for other := range c.installed {
		c.queue.Add(other)
	}
	for other := range c.blocked {
		c.queue.Add(other)
	}
}

// reconcileRoutes compares our routes in the kernel with what the Nodes
// want, in one listing: it deletes routes with our protocol that no Node
// wants (left by an earlier run for Nodes deleted meanwhile, or added by
// hand) and puts back wanted ones that were deleted or changed by hand.
func (c *Controller) reconcileRoutes() error {
	_, _, err := c.reconcileRoutesCounted()
	return err
}

// reconcileRoutesCounted is reconcileRoutes that also returns how many
// routes it restored and deleted.
func (c *Controller) reconcileRoutesCounted() (restored, deleted int, err error) {
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
	for _, r := range routes {
		if s, ok := wanted[r.Dst.String()]; ok {
			correct[s.key()] = s.Gateway.Equal(r.Gateway)
			continue
		}
		if err := c.routes.DeleteRoute(r.Dst); err != nil {
			return restored, deleted, kindError(ErrorKindRoutes, fmt.Errorf("delete unwanted route %s: %w", r.Dst, err))
		}
		deleted++
		klog.InfoS("Deleted route no Node wants", "dst", r.Dst, "gateway", r.Gateway)
	}
	for key, s := range wanted {
		if correct[key] {
			continue
		}
		if err := c.routes.EnsureRoute(s.CIDR, s.Gateway); err != nil {
			return restored, deleted, kindError(ErrorKindRoutes, fmt.Errorf("restore route %s via %s: %w", s.CIDR, s.Gateway, err))
		}
		restored++
		klog.InfoS("Restored route", "dst", s.CIDR, "gateway", s.Gateway)
	}
	return restored, deleted, nil
}

// gatewaysOf returns the gateway IPs of the subnets in lists, once each.
func gatewaysOf(lists ...[]podSubnet) []net.IP {
	seen := map[string]bool{}
	var gws []net.IP
	for _, list := range lists {
		for _, s := range list {
			if !seen[s.Gateway.String()] {
				seen[s.Gateway.String()] = true
				gws = append(gws, s.Gateway)
			}
		}
	}
	return gws
}

func containsSubnet(list []podSubnet, s podSubnet) bool {
	for _, x := range list {
		if x.key() == s.key() {
			return true
		}
	}
	return false
}

func sameSubnets(a, b []podSubnet) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !containsSubnet(b, s) {
			return false
		}
	}
	return true
}

func subnetKeys(list []podSubnet) []string {
	keys := make([]string, 0, len(list))
	for _, s := range list {
		keys = append(keys, s.key())
	}
	return keys
}
