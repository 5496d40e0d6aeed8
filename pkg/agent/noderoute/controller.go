// Package noderoute holds the controller that turns the Node objects of the
// cluster into ARP and NDP responder flows and onlink routes on the local
// node.
package noderoute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
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
	// claims indexes the subnets of installed by prefix, for the overlap
	// check. During a batch it also holds the subnets planned so far
	// (see syncNodes).
	claims *subnetIndex
	// localSubnets are this node's own pod CIDRs: a remote CIDR that
	// overlaps them would hijack local pod traffic and is refused.
	localSubnets []podSubnet
	// blocked holds Nodes with a CIDR refused because another Node
	// holds an overlapping one; they are synced again when a CIDR is
	// released.
	blocked map[string]bool
	// rejected holds, per Node, its refused pod CIDRs as last reported
	// (key: CIDR and reason; value: kind), so that each refusal is
	// logged and counted once.
	rejected map[string]map[string]string
	// kernelRoutes is, during the first full sync only, a snapshot of our
	// routes already in the kernel (destination -> gateway), left by an
	// earlier run: those need no new netlink call. Nil afterwards.
	kernelRoutes map[string]string
	// phases, while not nil, collects the time the first full sync
	// spends in each phase of applyAll.
	phases *applyPhases
	// fullSyncDone is closed once the first full sync and the clean-up
	// of what earlier runs left are done.
	fullSyncDone chan struct{}

	// reconcileRequests carries requests for a prompt route reconcile
	// (RequestRouteReconcile); one pending request is enough.
	reconcileRequests chan struct{}

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
		claims:       newSubnetIndex(),
		blocked:      map[string]bool{},
		rejected:     map[string]map[string]string{},
		fullSyncDone: make(chan struct{}),

		reconcileRequests: make(chan struct{}, 1),
	}
	_, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.enqueueUpdate,
		DeleteFunc: c.enqueue,
	})
	if err != nil {
		return nil, fmt.Errorf("add Node event handler: %w", err)
	}
	return c, nil
}

// enqueueUpdate enqueues an updated Node only when something the agent acts
// on changed. Most updates on a real cluster are kubelets' status
// heartbeats: the informer has already decoded and trimmed them, and they
// must cost nothing more (no queue add, no sync).
func (c *Controller) enqueueUpdate(oldObj, newObj interface{}) {
	oldNode, okOld := oldObj.(*corev1.Node)
	newNode, okNew := newObj.(*corev1.Node)
	if okOld && okNew && !routingFieldsChanged(oldNode, newNode) {
		return
	}
	c.enqueue(newObj)
}

// routingFieldsChanged reports whether two versions of a Node differ in what
// decides its flows and routes: its pod CIDRs, its identity, or whether it
// is being deleted. Everything else is trimmed away by TrimNode anyway.
func routingFieldsChanged(a, b *corev1.Node) bool {
	return a.UID != b.UID ||
		(a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil) ||
		a.Spec.PodCIDR != b.Spec.PodCIDR ||
		!slices.Equal(a.Spec.PodCIDRs, b.Spec.PodCIDRs)
}

// enqueue adds the Node's name to the queue.
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
	go c.serveReconcileRequests(ctx)
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
	c.mu.Lock()
	c.phases = &applyPhases{}
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
	phases := *c.phases
	c.phases = nil
	c.mu.Unlock()
	// The phases are applyAll's (summed over attempts): responders in,
	// routes in, old responders out. The rest of the duration is reading
	// the cache, planning, and deleting stale flows and unwanted routes.
	klog.InfoS("First full sync done", "remoteNodes", nodes, "subnets", subnets, "duration", time.Since(start),
		"flowsPhase", phases[phaseFlows], "routesPhase", phases[phaseRoutes], "oldFlowsPhase", phases[phaseOldFlows])
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
		restored, deleted, err := c.reconcileRoutesCounted()
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
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	// One batch: every Node's flows in one bundle, then every route back
	// to back (see syncNodes).
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
	return failed, c.reconcileRoutes()
}

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
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	keys := []string{key}
	// Len counts keys waiting, not the ones being processed; with one
	// worker, Get returns at once while it is positive.
	for len(keys) < maxBatch && c.queue.Len() > 0 {
		next, quit := c.queue.Get()
		if quit {
			break
		}
		keys = append(keys, next)
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

// syncNode makes the data plane match what the lister says of one Node. It
// is idempotent: it compares with what is installed and changes only the
// difference. Routes edited by hand are put right by reconcileRoutes.
func (c *Controller) syncNode(name string) error {
	return c.syncNodes([]string{name})[name]
}

// syncNodes is syncNode for several Nodes at once, in phases across all of
// them (see applyAll), and returns the errors by Node name. The local Node
// goes first, so that the overlap checks know its pod CIDRs. The wanted
// subnets of each remote Node are claimed in c.claims as they are planned,
// (together with what they still have) so that Nodes later in the batch are
// checked against them; the claims of Nodes that then fail are taken back.
func (c *Controller) syncNodes(names []string) map[string]error {
	errs := map[string]error{}
	nodes := map[string]*corev1.Node{}
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

	c.mu.Lock()
	defer c.mu.Unlock()

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
	order := make([]string, 0, len(nodes))
	plan := make(map[string][]podSubnet, len(nodes))
	for _, name := range names {
		node, ok := nodes[name]
		if !ok {
			continue
		}
		delete(nodes, name) // a name listed twice is planned once
		var want []podSubnet
		if node != nil {
			want = c.wantedSubnets(node)
		} else {
			c.reportRejections(name, nil)
			delete(c.blocked, name)
		}
		order = append(order, name)
		plan[name] = want
		// Claimed with what it still has: a CIDR it gives up stays
		// its own until its route is gone (recordInstalled), so no
		// Node later in the batch takes it over while its old route
		// and responder are still there; that Node waits (blocked)
		// and is synced again once the CIDR is released.
		c.claims.set(name, unionSubnets(want, c.installed[name]))
	}
	for name, err := range c.applyAll(order, plan) {
		errs[name] = err
	}
	return errs
}

// wantedSubnets returns the Node's usable pod subnets, logging (and leaving
// out) those that are malformed or would clash with others.
func (c *Controller) wantedSubnets(node *corev1.Node) []podSubnet {
	if len(nodePodCIDRs(node)) == 0 {
		klog.V(2).InfoS("Node has no pod CIDR yet, waiting", "node", node.Name)
		c.reportRejections(node.Name, nil)
		delete(c.blocked, node.Name)
		return nil
	}
	want, ignored, blockedByRemote := c.desiredSubnets(node)
	c.reportRejections(node.Name, ignored)
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
			ignored = append(ignored, IgnoredCIDR{PodCIDR: cidr, Kind: rejectKind(err), Reason: err.Error()})
		}
		for _, s := range subnets {
			if seen[s.key()] {
				continue
			}
			seen[s.key()] = true
			if len(c.localSubnets) > 0 && !hasFamilyOf(c.localSubnets, s) {
				ignored = append(ignored, IgnoredCIDR{PodCIDR: s.key(), Kind: RejectFamily,
					Reason: fmt.Sprintf("this node has no %s pod CIDR", familyName(s))})
				continue
			}
			if owner, clash := c.clash(node.Name, s); clash != "" {
				kind := RejectOverlapRemote
				if owner == c.localNode {
					kind = RejectOverlapLocal
				}
				ignored = append(ignored, IgnoredCIDR{PodCIDR: s.key(), Kind: kind, Reason: fmt.Sprintf("overlaps %s of node %s", clash, owner)})
				blockedByRemote = blockedByRemote || owner != c.localNode
				continue
			}
			want = append(want, s)
		}
	}
	return want, ignored, blockedByRemote
}

// clash returns the owner and CIDR of a subnet that s overlaps: this node's
// own, or another remote Node's claimed one.
func (c *Controller) clash(nodeName string, s podSubnet) (owner, cidr string) {
	for _, l := range c.localSubnets {
		if overlaps(l.CIDR, s.CIDR) {
			return c.localNode, l.key()
		}
	}
	if owner, claim, ok := c.claims.overlapping(s.CIDR, nodeName); ok {
		return owner, claim.String()
	}
	return "", ""
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
	// Every remote Node again: overlaps with our CIDRs and the address
	// families we accept both depend on them.
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Cannot list Nodes to re-check them against this node's new pod CIDRs")
	}
	for _, n := range nodes {
		if n.Name != c.localNode {
			c.queue.Add(n.Name)
		}
	}
	for other := range c.installed {
		c.queue.Add(other)
	}
}

// hasFamilyOf reports whether list holds a subnet of s's address family.
func hasFamilyOf(list []podSubnet, s podSubnet) bool {
	for _, l := range list {
		if (l.CIDR.IP.To4() == nil) == (s.CIDR.IP.To4() == nil) {
			return true
		}
	}
	return false
}

func familyName(s podSubnet) string {
	if s.CIDR.IP.To4() != nil {
		return "IPv4"
	}
	return "IPv6"
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
