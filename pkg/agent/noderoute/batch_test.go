package noderoute

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

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
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := NewController(localNode, factory.Core().V1().Nodes(),
		loggedFlows{openflow.NewFake(), log}, loggedRoutes{routes, log}, time.Hour)
	if err != nil {
		t.Fatal(err)
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
	routes.SetError("10.128.5.0/24", errors.New("injected netlink failure"))
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
	routes.SetError("10.128.5.0/24", nil)
	for len(routes.Routes()) != 20 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("bench-5's route not installed after the failure cleared: %d routes", len(routes.Routes()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctrl.mu.Lock()
	defer ctrl.mu.Unlock()
	if owner, _, ok := ctrl.claims.overlapping(mustCIDR("10.128.5.0/24"), ""); !ok || owner != "bench-5" {
		t.Errorf("claim of 10.128.5.0/24 = %q %v, want bench-5's", owner, ok)
	}
}
