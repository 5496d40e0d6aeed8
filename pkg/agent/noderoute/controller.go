// Package noderoute holds the controller that turns the Node objects of the
// cluster into ARP and NDP responder flows and onlink routes on the local
// node.
package noderoute

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
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
// one worker syncs them in batches (syncNodes), idempotently. A single
// worker is a choice: every change ends in the same OVS connection and
// netlink socket anyway, and one worker keeps the cross-Node checks
// (overlapping CIDRs) free of races.
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

	// mu is held by whoever changes the data plane (the worker's
	// batches, the route reconciles), across the OVS and netlink calls,
	// and guards the fields below up to published. Readers of the
	// controller's state (State, Stats) do not take it: they read
	// published.
	mu sync.Mutex
	// installed holds, per remote Node, the subnets whose flows and
	// routes are in place. Its slices are replaced, never changed in
	// place, so that published can share them.
	installed map[string][]podSubnet
	// claims indexes the subnets of installed by prefix, for the overlap
	// check. During a batch it also holds the subnets planned so far
	// (see planBatch).
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
	// firstSync is set while the first full sync runs, nil otherwise.
	firstSync *firstFullSync

	// published is what State and Stats read: a copy of installed and
	// localSubnets that the worker publishes after each batch.
	published atomic.Pointer[snapshot]

	// fullSyncDone is closed once the first full sync and the clean-up
	// of what earlier runs left are done.
	fullSyncDone chan struct{}

	// reconcileRequests carries requests for a prompt route reconcile
	// (RequestRouteReconcile); one pending request is enough.
	reconcileRequests chan struct{}

	// observer, when set, receives sync durations and errors.
	observer Observer
}

// NodeInformer is a shared informer of Nodes with its lister: client-go's
// generated NodeInformer and nodeclient.Informer are both one.
type NodeInformer interface {
	Informer() cache.SharedIndexInformer
	Lister() corelisters.NodeLister
}

// NewController wires a controller to the Node informer and the data plane.
func NewController(localNode string, nodeInformer NodeInformer, flows openflow.Client, routes route.Interface, resyncPeriod time.Duration) (*Controller, error) {
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
	c.publish()
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
