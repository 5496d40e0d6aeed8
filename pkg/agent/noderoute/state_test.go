package noderoute

import (
	"errors"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

func TestStateAndStatsOfSeedCluster(t *testing.T) {
	rec := &recorder{}
	env := startWith(t, testsupport.ClusterNodeObjects(), rec)
	st := env.ctrl.State()
	want := apiserver.ControllerState{
		LocalNode:     "worker1",
		LocalPodCIDRs: []string{"10.222.1.0/24"},
		FullSyncDone:  true,
		RemoteNodes: []apiserver.RemoteNodeState{
			{Name: "master", Desired: []apiserver.Subnet{{PodCIDR: "10.222.0.0/24", GatewayIP: "10.222.0.1"}}, Installed: []apiserver.Subnet{{PodCIDR: "10.222.0.0/24", GatewayIP: "10.222.0.1"}}},
			{Name: "worker2", Desired: []apiserver.Subnet{{PodCIDR: "10.222.2.0/24", GatewayIP: "10.222.2.1"}}, Installed: []apiserver.Subnet{{PodCIDR: "10.222.2.0/24", GatewayIP: "10.222.2.1"}}},
		},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("State() =\n%+v\nwant\n%+v", st, want)
	}
	if got, want := env.ctrl.Stats(), (Stats{NodesSeen: 3, RemoteNodes: 2, Routes: 2, ArpResponderFlows: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	for _, r := range []syncRecord{{SyncFull, ""}, {SyncNode, ""}} {
		if !rec.has(r) {
			t.Errorf("observer did not see %+v: %+v", r, rec.records)
		}
	}
}

func TestStateShowsIgnoredCIDRsAndPendingSyncs(t *testing.T) {
	rec := &recorder{}
	env := startWith(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24", "fd00:1::/64"),
		node("a-first", "10.50.0.0/24"),
		node("b-later", "10.50.0.0/25", "bogus", "10.60.0.0/24"),
		node("pending"),
	}, rec)
	env.eventually(t, []string{"a-first:10.50.0.1", "b-later:10.60.0.1"},
		[]string{"10.50.0.0/24 via 10.50.0.1", "10.60.0.0/24 via 10.60.0.1"})
	st := env.ctrl.State()
	if len(st.RemoteNodes) != 3 {
		t.Fatalf("remote nodes: %+v", st.RemoteNodes)
	}
	b := st.RemoteNodes[1]
	if b.Name != "b-later" || !reflect.DeepEqual(b.Desired, []apiserver.Subnet{{PodCIDR: "10.60.0.0/24", GatewayIP: "10.60.0.1"}}) {
		t.Errorf("b-later: %+v", b)
	}
	wantIgnored := []apiserver.IgnoredCIDR{
		{PodCIDR: "10.50.0.0/25", Kind: RejectOverlapRemote, Reason: "overlaps 10.50.0.0/24 of node a-first"},
		{PodCIDR: "bogus", Kind: RejectMalformed, Reason: `pod CIDR "bogus" is not a CIDR`},
	}
	if !reflect.DeepEqual(b.Ignored, wantIgnored) {
		t.Errorf("b-later ignored = %+v, want %+v", b.Ignored, wantIgnored)
	}
	// Each refusal is counted once, however often b-later is synced.
	for range 3 {
		env.ctrl.queue.Add("b-later")
	}
	time.Sleep(100 * time.Millisecond)
	if got, want := rec.rejections(), map[string]int{RejectOverlapRemote: 1, RejectMalformed: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("rejections counted %v, want %v", got, want)
	}
	if p := st.RemoteNodes[2]; p.Name != "pending" || len(p.Desired) != 0 || len(p.Installed) != 0 {
		t.Errorf("pending: %+v", p)
	}
	if !reflect.DeepEqual(st.LocalPodCIDRs, []string{"10.222.1.0/24", "fd00:1::/64"}) {
		t.Errorf("local CIDRs %v", st.LocalPodCIDRs)
	}

	// A Node whose route cannot be installed is desired, not installed,
	// and its failures are counted as route errors.
	env.routes.Inject("10.222.3.0/24", errors.New("injected netlink failure"))
	if _, err := env.client.CoreV1().Nodes().Create(ctx, node("worker3", "10.222.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !rec.has(syncRecord{SyncNode, ErrorKindRoutes}) {
		if time.Now().After(deadline) {
			t.Fatalf("no route error observed: %+v", rec.records)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, n := range env.ctrl.State().RemoteNodes {
		if n.Name == "worker3" && (len(n.Desired) != 1 || len(n.Installed) != 0) {
			t.Errorf("worker3 while failing: %+v", n)
		}
	}
}

// blockingRoutes is the route fake whose next EnsureRoute, once armed,
// signals entered and waits for release: a netlink call that hangs.
type blockingRoutes struct {
	*route.Fake
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (r *blockingRoutes) EnsureRoute(dst *net.IPNet, gw net.IP) error {
	if r.armed.CompareAndSwap(true, false) {
		close(r.entered)
		<-r.release
	}
	return r.Fake.EnsureRoute(dst, gw)
}

// State and Stats answer while a batch is stuck inside a data-plane call,
// and show the state from before that batch.
func TestStateAndStatsDoNotWaitForABlockedSync(t *testing.T) {
	var objs []runtime.Object
	for _, n := range testsupport.ClusterNodeObjects() {
		objs = append(objs, n)
	}
	client := fake.NewSimpleClientset(objs...)
	routes := &blockingRoutes{Fake: route.NewFake(), entered: make(chan struct{}), release: make(chan struct{})}
	ctrl := runController(t, client, openflow.NewFake(), routes, nil)
	var released atomic.Bool
	release := func() {
		if released.CompareAndSwap(false, true) {
			close(routes.release)
		}
	}
	// Runs before runController's clean-up, which waits for Run to end.
	t.Cleanup(release)

	routes.armed.Store(true)
	if _, err := client.CoreV1().Nodes().Create(ctx, node("worker3", "10.222.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-routes.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("worker3's sync never reached EnsureRoute")
	}

	var st apiserver.ControllerState
	var stats Stats
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		st = ctrl.State()
		stats = ctrl.Stats()
	}()
	select {
	case <-answered:
	case <-time.After(2 * time.Second):
		t.Fatal("State and Stats did not return while a sync was blocked in a netlink call")
	}
	if want := (Stats{NodesSeen: 4, RemoteNodes: 2, Routes: 2, ArpResponderFlows: 2}); stats != want {
		t.Errorf("Stats() during the blocked sync = %+v, want %+v (the state before it)", stats, want)
	}
	var w3 *apiserver.RemoteNodeState
	for i := range st.RemoteNodes {
		if st.RemoteNodes[i].Name == "worker3" {
			w3 = &st.RemoteNodes[i]
		}
	}
	if w3 == nil || len(w3.Desired) != 1 || len(w3.Installed) != 0 {
		t.Errorf("worker3 during its blocked sync: %+v, want desired and not installed", w3)
	}

	release()
	deadline := time.Now().Add(5 * time.Second)
	for ctrl.Stats().RemoteNodes != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("worker3 not installed after the sync was released: %+v", ctrl.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
