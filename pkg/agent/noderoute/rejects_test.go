package noderoute

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An IPv6 pod CIDR of a remote Node is refused while this node has no IPv6
// pod CIDR of its own, and installed once it has one.
func TestAddressFamilyOfLocalNodeGatesRemoteCIDRs(t *testing.T) {
	rec := &recorder{}
	env := startWith(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24"),
		node("worker2", "10.222.2.0/24", "fd00:10:222:2::/64"),
	}, rec)
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
	ignored := env.ctrl.State().RemoteNodes[0].Ignored
	if len(ignored) != 1 || ignored[0].Kind != RejectFamily || ignored[0].PodCIDR != "fd00:10:222:2::/64" {
		t.Errorf("ignored = %+v, want fd00:10:222:2::/64 of kind %s", ignored, RejectFamily)
	}
	if got := rec.rejections()[RejectFamily]; got != 1 {
		t.Errorf("%s rejections counted %d, want 1", RejectFamily, got)
	}

	if _, err := env.client.CoreV1().Nodes().Update(ctx, node("worker1", "10.222.1.0/24", "fd00:10:222:1::/64"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, []string{"worker2:10.222.2.1", "worker2:fd00:10:222:2::1"},
		[]string{"10.222.2.0/24 via 10.222.2.1", "fd00:10:222:2::/64 via fd00:10:222:2::1"})
}

// Hostile pod CIDRs are refused with their kind, and none of them reaches
// the data plane.
func TestHostileCIDRKinds(t *testing.T) {
	rec := &recorder{}
	env := startWith(t, []*corev1.Node{
		node("worker1", "10.222.1.0/24"),
		node("all", "0.0.0.0/0"),
		node("host", "10.9.9.9/32"),
		node("p2p", "10.9.8.0/31"),
		node("junk", "10.1.2.3/33"),
		node("mine", "10.222.1.128/25"),
	}, rec)
	env.eventually(t, nil, nil)
	want := map[string]int{RejectPrefixLength: 3, RejectMalformed: 1, RejectOverlapLocal: 1}
	for kind, n := range want {
		if got := rec.rejections()[kind]; got != n {
			t.Errorf("%s rejections = %d, want %d (all: %v)", kind, got, n, rec.rejections())
		}
	}
}

// A pod CIDR changing back and forth quickly ends, whatever the batches the
// events fell into, with exactly the last one installed and nothing of the
// others left behind.
func TestPodCIDRFlapping(t *testing.T) {
	env := start(t, []*corev1.Node{node("worker1", "10.222.1.0/24"), node("worker2", "10.222.2.0/24")})
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
	cidrs := []string{"10.222.9.0/24", "10.222.2.0/24"}
	for i := range 100 {
		if _, err := env.client.CoreV1().Nodes().Update(ctx, node("worker2", cidrs[i%2]), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The last update (i = 99) set 10.222.2.0/24.
	env.eventually(t, []string{"worker2:10.222.2.1"}, []string{"10.222.2.0/24 via 10.222.2.1"})
	if _, err := env.client.CoreV1().Nodes().Update(ctx, node("worker2", "10.222.9.0/24"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.eventually(t, []string{"worker2:10.222.9.1"}, []string{"10.222.9.0/24 via 10.222.9.1"})
}
