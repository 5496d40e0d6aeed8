package noderoute

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

// manyNodes returns worker1 (us) and n remote Nodes with /24s from
// 10.128.0.0 on.
func manyNodes(n int) []runtime.Object {
	objs := []runtime.Object{node(localNode, "10.222.1.0/24")}
	for i := range n {
		objs = append(objs, node(fmt.Sprintf("bench-%d", i), fmt.Sprintf("10.%d.%d.0/24", 128+i/256, i%256)))
	}
	return objs
}

// runLogged runs a controller over objs with data-plane fakes that log every
// call in one sequence, and waits for the first full sync.
func runLogged(t *testing.T, routes *route.Fake, objs ...runtime.Object) (*Controller, *orderLog) {
	t.Helper()
	log := &orderLog{}
	ctrl := runController(t, fake.NewSimpleClientset(objs...), loggedFlows{openflow.NewFake(), log}, loggedRoutes{routes, log}, nil)
	return ctrl, log
}

// The first full sync installs every Node's responders in one batch, then
// every route, with no flow call in between: the shape that keeps it linear
// on a real OVS (docs/performance.md).
func TestFullSyncIsOneFlowBatchThenRoutes(t *testing.T) {
	const n = 300
	_, log := runLogged(t, route.NewFake(), manyNodes(n)...)
	log.mu.Lock()
	ops := append([]string(nil), log.ops...)
	log.mu.Unlock()
	if len(ops) != 2*n {
		t.Fatalf("%d data-plane calls in the full sync, want %d (%d flow lines of one batch, %d routes): %v", len(ops), 2*n, n, n, ops[:min(len(ops), 10)])
	}
	for i, op := range ops {
		wantPrefix := "batch flows bench-"
		if i >= n {
			wantPrefix = "add route "
		}
		if !strings.HasPrefix(op, wantPrefix) {
			t.Fatalf("call %d is %q, want %q...: all flows first, then all routes", i, op, wantPrefix)
		}
	}
}

// A Node whose route fails in a batch does not hold back the others; it is
// retried alone and its claim does not block a later Node.
func TestBatchWithAFailingNode(t *testing.T) {
	routes := route.NewFake()
	routes.Inject("10.128.5.0/24", errors.New("injected netlink failure"))
	ctrl, _ := runLogged(t, routes, manyNodes(20)...)
	if got := len(routes.Routes()); got != 19 {
		t.Fatalf("%d routes after the full sync, want 19 (all but bench-5's)", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ctrl.queue.NumRequeues("bench-5") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("bench-5 not retried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	routes.Inject("10.128.5.0/24", nil)
	for len(routes.Routes()) != 20 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("bench-5's route not installed after the failure cleared: %d routes", len(routes.Routes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctrl.mu.Lock()
	defer ctrl.mu.Unlock()
	if owner, _, ok := ctrl.claims.overlapping(testsupport.MustCIDR("10.128.5.0/24"), ""); !ok || owner != "bench-5" {
		t.Errorf("claim of 10.128.5.0/24 = %q %v, want bench-5's", owner, ok)
	}
}

// A CIDR that one Node gives up and another takes in the same batch goes
// to the new owner only after the old owner's route is gone: the new owner
// waits (blocked) and is synced again. Before, the old owner's responder
// removal deleted the flow the new owner had just installed for the same
// gateway.
func TestCIDRHandedOverInOneBatch(t *testing.T) {
	log := &orderLog{}
	client := fake.NewSimpleClientset(node("worker1", "10.222.1.0/24"), node("a-old", "10.128.0.0/24"))
	factory := informers.NewSharedInformerFactory(client, 0)
	flows, routes := openflow.NewFake(), route.NewFake()
	// No Run: the test calls the syncs itself, so that both changes
	// below are in the cache before one batch syncs them.
	ctrl, err := NewController(localNode, factory.Core().V1().Nodes(), loggedFlows{flows, log}, loggedRoutes{routes, log}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	if errs := ctrl.syncNodes([]string{"worker1", "a-old"}); len(errs) != 0 {
		t.Fatal(errs)
	}
	nodes := client.CoreV1().Nodes()
	if err := nodes.Delete(ctx, "a-old", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Create(ctx, node("b-new", "10.128.0.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, errA := ctrl.lister.Get("a-old")
		_, errB := ctrl.lister.Get("b-new")
		return errA != nil && errB == nil
	})
	log.mu.Lock()
	log.ops = nil
	log.mu.Unlock()
	if errs := ctrl.syncNodes([]string{"a-old", "b-new"}); len(errs) != 0 {
		t.Fatalf("batch: %v", errs)
	}
	if got := strings.Join(log.ops, "; "); got != "flows a-old 10.128.0.1; del route 10.128.0.0/24; flows a-old " {
		t.Errorf("batch calls: %s\nwant a-old's route and responder removed, nothing for b-new yet", got)
	}
	if !ctrl.blocked["b-new"] {
		t.Error("b-new not blocked while a-old still held the CIDR")
	}
	// The requeued b-new, synced again, gets it.
	if err := ctrl.syncNodes([]string{"b-new"})["b-new"]; err != nil {
		t.Fatal(err)
	}
	if got := flows.NodeFlows(); len(got) != 1 || strings.Join(got["b-new"], ",") != "10.128.0.1" {
		t.Errorf("flows after b-new's sync: %v", got)
	}
	if got := routes.Routes(); len(got) != 1 || got[0].Dst.String() != "10.128.0.0/24" {
		t.Errorf("routes after b-new's sync: %v", got)
	}
}

// A blocked Node whose own sync fails is retried rate-limited, not
// re-added at once after every batch (a hot loop of failing syncs).
func TestBlockedFailingNodeIsNotHotLooped(t *testing.T) {
	env := start(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24", "fd00:1::/64"),
		node("a-first", "10.128.0.0/24"),
		node("b-later", "10.128.0.0/25", "fd00:2::/64"),
	})
	env.eventually(t, []string{"a-first:10.128.0.1", "b-later:fd00:2::1"}, []string{"10.128.0.0/24 via 10.128.0.1", "fd00:2::/64 via fd00:2::1"})
	// b-later's IPv6 route is gone, and cannot be added back.
	if err := env.routes.DeleteRoute(testsupport.MustCIDR("fd00:2::/64")); err != nil {
		t.Fatal(err)
	}
	env.routes.Inject("fd00:2::/64", errors.New("injected: foreign route in the way"))
	env.ctrl.mu.Lock()
	delete(env.ctrl.installed, "b-later") // so that its sync adds the route again
	env.ctrl.mu.Unlock()
	before := env.routes.Calls().Ensure
	env.ctrl.queue.Add("b-later")
	time.Sleep(time.Second)
	// The rate limiter allows 5 ms, 10 ms, 20 ms, ... : about 8 tries in
	// a second. A hot loop made tens of thousands.
	if n := env.routes.Calls().Ensure - before; n > 50 {
		t.Errorf("%d route adds in 1 s for one failing blocked Node, want a rate-limited handful", n)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("informer cache did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
