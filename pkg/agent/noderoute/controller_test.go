package noderoute

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

const localNode = "worker1"

type testEnv struct {
	client kubernetes.Interface
	flows  *openflow.Fake
	routes *route.Fake
	ctrl   *Controller
}

// node returns a Node object with the given pod CIDRs.
var node = testsupport.Node

// start runs a controller for worker1 over the given Nodes and kernel routes,
// and waits for its first full sync.
func start(t *testing.T, nodes []*corev1.Node, kernel ...route.Route) *testEnv {
	t.Helper()
	return startWith(t, nodes, nil, kernel...)
}

// startWith is start with an observer (nil for none) installed before Run.
func startWith(t *testing.T, nodes []*corev1.Node, obs Observer, kernel ...route.Route) *testEnv {
	t.Helper()
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	env := &testEnv{
		client: fake.NewSimpleClientset(objs...),
		flows:  openflow.NewFake(),
		routes: route.NewFake(kernel...),
	}
	env.ctrl = runController(t, env.client, env.flows, env.routes, obs)
	return env
}

// runController runs a controller for worker1 over client's Nodes and the
// data-plane clients given, with obs (nil for none), until the test ends,
// and waits for its first full sync.
func runController(t *testing.T, client kubernetes.Interface, flows openflow.Client, routes route.Interface, obs Observer) *Controller {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := NewController(localNode, factory.Core().V1().Nodes(), flows, routes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if obs != nil {
		ctrl.SetObserver(obs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	factory.Start(ctx.Done())
	go func() {
		defer close(done)
		if err := ctrl.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-ctrl.FullSyncDone():
	case <-time.After(10 * time.Second):
		t.Fatal("first full sync not done after 10s")
	}
	return ctrl
}

// state renders the fakes as "node:gateway" flows and "dst via gw" routes.
func (e *testEnv) state() (flows, routes []string) {
	for n, gws := range e.flows.NodeFlows() {
		for _, gw := range gws {
			flows = append(flows, n+":"+gw)
		}
	}
	sort.Strings(flows)
	for _, r := range e.routes.Routes() {
		routes = append(routes, r.Dst.String()+" via "+r.Gateway.String())
	}
	return flows, routes
}

// eventually waits until the fakes hold exactly the flows and routes given.
func (e *testEnv) eventually(t *testing.T, wantFlows, wantRoutes []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		flows, routes := e.state()
		if reflect.DeepEqual(flows, wantFlows) && reflect.DeepEqual(routes, wantRoutes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("data plane did not converge\n flows:  %v\n want:   %v\n routes: %v\n want:   %v", flows, wantFlows, routes, wantRoutes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var ctx = context.Background()

func TestSeedClusterFromWorker1(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"})
	if env.flows.StaleDeleted != 1 {
		t.Errorf("DeleteStaleFlows called %d times after the first sync, want 1", env.flows.StaleDeleted)
	}
}

func TestNodeAddUpdateDelete(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	nodes := env.client.CoreV1().Nodes()

	if _, err := nodes.Create(ctx, node("worker3", "10.222.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1", "worker3:10.222.3.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1", "10.222.3.0/24 via 10.222.3.1"})

	// podCIDR change: the old route and flow go, the new ones come.
	if _, err := nodes.Update(ctx, node("worker3", "10.222.9.0/24"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1", "worker3:10.222.9.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1", "10.222.9.0/24 via 10.222.9.1"})

	if err := nodes.Delete(ctx, "worker3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nodes.Delete(ctx, "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
}

// A delete whose final state the informer missed arrives as a tombstone.
func TestDeleteTombstone(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"})
	// Remove the Node behind the informer's back, then hand the
	// controller the tombstone the informer would deliver.
	if err := env.client.CoreV1().Nodes().Delete(ctx, "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	env.ctrl.enqueue(cache.DeletedFinalStateUnknown{Key: "master", Obj: node("master", "10.222.0.0/24")})
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
}

func TestOwnNodeNoCIDRAndBadCIDR(t *testing.T) {
	env := start(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24"),
		node("pending"),                           // no podCIDR yet: wait
		node("broken", "not-a-cidr"),              // skipped, others unaffected
		node("huge", "0.0.0.0/0"),                 // would hijack everything
		node("tiny", "10.50.0.1/32"),              // no room for a gateway
		node("worker2", "10.222.2.0/24", "bogus"), // the good CIDR still counts
	})
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})

	// The pending Node gets its CIDR later.
	if _, err := env.client.CoreV1().Nodes().Update(ctx, node("pending", "10.222.5.0/24"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t,
		[]string{"pending:10.222.5.1", "worker2:10.222.2.1"},
		[]string{"10.222.2.0/24 via 10.222.2.1", "10.222.5.0/24 via 10.222.5.1"})
}

func TestDualStackNodeGetsRoutesOfBothFamilies(t *testing.T) {
	env := start(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24", "fd00:10:222:1::/64"),
		node("worker2", "10.222.2.0/24", "fd00:10:222:2::/64"),
	})
	// A responder (ARP for IPv4, NDP for IPv6) and a route per family.
	env.eventually(t,
		[]string{"worker2:10.222.2.1", "worker2:fd00:10:222:2::1"},
		[]string{"10.222.2.0/24 via 10.222.2.1", "fd00:10:222:2::/64 via fd00:10:222:2::1"})
	if got, want := env.ctrl.Stats(), (Stats{NodesSeen: 2, RemoteNodes: 1, Routes: 2, ArpResponderFlows: 1, NdpResponderFlows: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}

	// worker2 drops its IPv4 CIDR (a single-stack IPv6 Node): only the
	// IPv6 responder and route stay.
	if _, err := env.client.CoreV1().Nodes().Update(ctx, node("worker2", "fd00:10:222:2::/64"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t,
		[]string{"worker2:fd00:10:222:2::1"},
		[]string{"fd00:10:222:2::/64 via fd00:10:222:2::1"})
}

// A single-stack IPv6 cluster: NDP responders and IPv6 routes, a /120 as
// well as /64s, and an IPv6 CIDR overlapping our own is refused.
func TestSingleStackIPv6Cluster(t *testing.T) {
	env := start(t, []*corev1.Node{
		node("worker1", "fd00:10:222:1::/64"),
		node("master", "fd00:10:222::/64"),
		node("worker2", "fd00:10:222:2::/64"),
		node("small", "fd00:10:223::100/120"),
		node("evil", "fd00:10:222:1::/80"),
	})
	env.eventually(t,
		[]string{"master:fd00:10:222::1", "small:fd00:10:223::101", "worker2:fd00:10:222:2::1"},
		[]string{"fd00:10:222::/64 via fd00:10:222::1", "fd00:10:222:2::/64 via fd00:10:222:2::1", "fd00:10:223::100/120 via fd00:10:223::101"})
	st := env.ctrl.Stats()
	if st.ArpResponderFlows != 0 || st.NdpResponderFlows != 3 || st.Routes != 3 {
		t.Errorf("Stats() = %+v, want 3 NDP responders and 3 routes", st)
	}
}

func TestOverlappingCIDRs(t *testing.T) {
	env := start(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24"),
		node("evil", "10.222.0.0/16"),   // overlaps our own CIDR: refused
		node("a-first", "10.50.0.0/24"), // holds 10.50.0.0/24
		node("b-later", "10.50.0.0/25"), // overlaps a-first: waits
	})
	env.eventually(t, []string{"a-first:10.50.0.1"}, []string{"10.50.0.0/24 via 10.50.0.1"})

	// When the holder lets go, the waiting Node gets its CIDR.
	if err := env.client.CoreV1().Nodes().Delete(ctx, "a-first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, []string{"b-later:10.50.0.1"}, []string{"10.50.0.0/25 via 10.50.0.1"})
}

// Routes of ours that no Node wants (left by an earlier run) are removed at
// start; wanted ones already there are kept without a netlink call.
func TestStartRemovesUnwantedRoutesAndKeepsWanted(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects(),
		route.Route{Dst: testsupport.MustCIDR("10.222.7.0/24"), Gateway: net.ParseIP("10.222.7.1")},
		route.Route{Dst: testsupport.MustCIDR("10.222.2.0/24"), Gateway: net.ParseIP("10.222.2.1")},
	)
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"})
	if calls := env.routes.Calls(); calls.Ensure != 1 {
		t.Errorf("EnsureRoute called %d times, want 1 (only master's route was missing)", calls.Ensure)
	}
}

// A route deleted by hand is put back by the periodic reconciliation.
func TestReconcileRestoresDeletedRoute(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"})
	if err := env.routes.DeleteRoute(testsupport.MustCIDR("10.222.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.ctrl.reconcileRoutes(); err != nil {
		t.Fatal(err)
	}
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"})
}

// A failing data plane is retried through the rate-limited queue.
func TestFailedSyncIsRetried(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	env.routes.Inject("10.222.3.0/24", errors.New("injected netlink failure"))
	if _, err := env.client.CoreV1().Nodes().Create(ctx, node("worker3", "10.222.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for env.ctrl.queue.NumRequeues("worker3") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("worker3 not retried after failures")
		}
		time.Sleep(10 * time.Millisecond)
	}
	env.routes.Inject("10.222.3.0/24", nil)
	env.eventually(t,
		[]string{"master:10.222.0.1", "worker2:10.222.2.1", "worker3:10.222.3.1"},
		[]string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1", "10.222.3.0/24 via 10.222.3.1"})
}

// A Node renamed to ours (deleted and recreated under our name) loses its
// flows and routes: we never route to ourselves.
func TestNodeRenamedToOurs(t *testing.T) {
	env := start(t, []*corev1.Node{node("worker2", "10.222.2.0/24")})
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
	nodes := env.client.CoreV1().Nodes()
	if err := nodes.Delete(ctx, "worker2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Create(ctx, node(localNode, "10.222.2.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, nil, nil)
}

var _ = fmt.Sprintf

// orderLog records data-plane calls of both fakes in one sequence.
type orderLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *orderLog) add(op string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

type loggedFlows struct {
	*openflow.Fake
	log *orderLog
}

func (f loggedFlows) InstallNodeFlows(node string, gws []net.IP) error {
	return f.InstallFlows(map[string][]net.IP{node: gws})
}

// InstallFlows logs one line per Node, in name order, prefixed with "batch"
// when the call covers several Nodes.
func (f loggedFlows) InstallFlows(nodes map[string][]net.IP) error {
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	prefix := "flows "
	if len(names) > 1 {
		prefix = "batch flows "
	}
	for _, node := range names {
		var s []string
		for _, gw := range nodes[node] {
			s = append(s, gw.String())
		}
		sort.Strings(s)
		f.log.add(prefix + node + " " + strings.Join(s, ","))
	}
	return f.Fake.InstallFlows(nodes)
}

type loggedRoutes struct {
	*route.Fake
	log *orderLog
}

func (r loggedRoutes) EnsureRoute(dst *net.IPNet, gw net.IP) error {
	r.log.add("add route " + dst.String())
	return r.Fake.EnsureRoute(dst, gw)
}

func (r loggedRoutes) DeleteRoute(dst *net.IPNet) error {
	r.log.add("del route " + dst.String())
	return r.Fake.DeleteRoute(dst)
}

// On a pod CIDR change the new responder comes before the new route, and
// the old route goes before the old responder: at no moment does a route
// point at a gateway that nobody answers for.
func TestResponderOutlivesItsRoute(t *testing.T) {
	log := &orderLog{}
	client := fake.NewSimpleClientset(node("worker1", "10.222.1.0/24"), node("worker2", "10.222.2.0/24"))
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := NewController(localNode, factory.Core().V1().Nodes(),
		loggedFlows{openflow.NewFake(), log}, loggedRoutes{route.NewFake(), log}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := ctrl.syncNodes([]string{"worker2"})["worker2"]; err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Update(ctx, node("worker2", "10.222.9.0/24"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := ctrl.lister.Get("worker2")
		if err == nil && n.Spec.PodCIDRs[0] == "10.222.9.0/24" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("informer did not see the update")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ctrl.syncNodes([]string{"worker2"})["worker2"]; err != nil {
		t.Fatal(err)
	}
	want := []string{
		"flows worker2 10.222.2.1", "add route 10.222.2.0/24",
		"flows worker2 10.222.2.1,10.222.9.1", "add route 10.222.9.0/24", "del route 10.222.2.0/24", "flows worker2 10.222.9.1",
	}
	if strings.Join(log.ops, "; ") != strings.Join(want, "; ") {
		t.Errorf("data-plane calls:\n %s\nwant:\n %s", strings.Join(log.ops, "\n "), strings.Join(want, "\n "))
	}
}
