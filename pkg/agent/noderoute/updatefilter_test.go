package noderoute

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// syncCounter counts node syncs.
type syncCounter struct {
	mu    sync.Mutex
	nodes int
}

func (s *syncCounter) ObserveSync(sync SyncType, _ time.Duration, _ error) {
	if sync == SyncNode {
		s.mu.Lock()
		s.nodes++
		s.mu.Unlock()
	}
}

func (s *syncCounter) nodeSyncs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes
}

func TestRoutingFieldsChanged(t *testing.T) {
	base := node("worker2", "10.222.2.0/24")
	base.UID = "u1"
	now := metav1.Now()
	for name, tc := range map[string]struct {
		edit func(n *corev1.Node)
		want bool
	}{
		"resource version only": {func(n *corev1.Node) { n.ResourceVersion = "42" }, false},
		"status only":           {func(n *corev1.Node) { n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}} }, false},
		"labels only":           {func(n *corev1.Node) { n.Labels = map[string]string{"a": "b"} }, false},
		"pod CIDRs":             {func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.222.3.0/24"} }, true},
		"second pod CIDR":       {func(n *corev1.Node) { n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, "fd00::/64") }, true},
		"legacy pod CIDR":       {func(n *corev1.Node) { n.Spec.PodCIDR = "10.222.2.0/24" }, true},
		"recreated (UID)":       {func(n *corev1.Node) { n.UID = "u2" }, true},
		"being deleted":         {func(n *corev1.Node) { n.DeletionTimestamp = &now }, true},
	} {
		changed := base.DeepCopy()
		tc.edit(changed)
		if got := routingFieldsChanged(base, changed); got != tc.want {
			t.Errorf("%s: routingFieldsChanged = %v, want %v", name, got, tc.want)
		}
	}
}

// Status heartbeats (every kubelet, every few seconds) reach no sync; a pod
// CIDR change right after them does. The heartbeats go to another Node than
// the CIDR change: the queue would fold one Node's keys into one sync.
func TestStatusUpdatesCauseNoSync(t *testing.T) {
	counter := &syncCounter{}
	env := startWith(t, testsupport.ClusterNodeObjects(), counter)
	ctx := context.Background()
	// The informer's initial adds are still queued after the first full
	// sync: let them be processed first.
	before := settle(t, env, counter)

	for i := 0; i < 20; i++ {
		patch := []byte(`{"status":{"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"` +
			time.Now().Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339) + `"}]}}`)
		if _, err := env.client.CoreV1().Nodes().Patch(ctx, "master", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			t.Fatal(err)
		}
	}
	n, err := env.client.CoreV1().Nodes().Get(ctx, "worker2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Spec.PodCIDRs = []string{"10.222.3.0/24"}
	if _, err := env.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Informer events arrive in order: once the CIDR change is synced,
	// the status updates before it have been handled too.
	deadline := time.Now().Add(10 * time.Second)
	for !hasRoute(env, "10.222.3.0/24") {
		if time.Now().After(deadline) {
			t.Fatalf("route for the new pod CIDR not installed; routes: %v", env.routes.Routes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := settle(t, env, counter) - before; got != 1 {
		t.Errorf("%d node syncs after 20 status updates and one pod CIDR change, want 1", got)
	}
}

func hasRoute(env *testEnv, dst string) bool {
	for _, r := range env.routes.Routes() {
		if r.Dst.String() == dst {
			return true
		}
	}
	return false
}

// settle waits until the controller's queue is empty and no node sync was
// counted for 200 ms, and returns the count.
func settle(t *testing.T, env *testEnv, counter *syncCounter) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, quietSince := counter.nodeSyncs(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n := counter.nodeSyncs()
		if n != last || env.ctrl.queue.Len() > 0 {
			last, quietSince = n, time.Now()
			continue
		}
		if time.Since(quietSince) >= 200*time.Millisecond {
			return n
		}
	}
	t.Fatal("controller still busy after 10 s")
	return 0
}
