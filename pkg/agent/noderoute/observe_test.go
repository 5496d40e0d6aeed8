package noderoute

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type syncRecord struct {
	sync SyncType
	kind string
}

type recorder struct {
	mu       sync.Mutex
	records  []syncRecord
	rejected map[string]int
}

func (r *recorder) ObserveRejectedCIDR(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[string]int{}
	}
	r.rejected[kind]++
}

func (r *recorder) rejections() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.rejected {
		out[k] = v
	}
	return out
}

func (r *recorder) ObserveSync(s SyncType, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, syncRecord{s, ErrorKind(err)})
}

func (r *recorder) has(want syncRecord) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec == want {
			return true
		}
	}
	return false
}

func TestStateAndStatsOfSeedCluster(t *testing.T) {
	rec := &recorder{}
	env := startWith(t, seedNodes(), rec)
	st := env.ctrl.State()
	want := State{
		LocalNode:     "worker1",
		LocalPodCIDRs: []string{"10.222.1.0/24"},
		FullSyncDone:  true,
		RemoteNodes: []RemoteNodeState{
			{Name: "master", Desired: []Subnet{{"10.222.0.0/24", "10.222.0.1"}}, Installed: []Subnet{{"10.222.0.0/24", "10.222.0.1"}}},
			{Name: "worker2", Desired: []Subnet{{"10.222.2.0/24", "10.222.2.1"}}, Installed: []Subnet{{"10.222.2.0/24", "10.222.2.1"}}},
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
	if b.Name != "b-later" || !reflect.DeepEqual(b.Desired, []Subnet{{"10.60.0.0/24", "10.60.0.1"}}) {
		t.Errorf("b-later: %+v", b)
	}
	wantIgnored := []IgnoredCIDR{
		{"10.50.0.0/25", RejectOverlapRemote, "overlaps 10.50.0.0/24 of node a-first"},
		{"bogus", RejectMalformed, `pod CIDR "bogus" is not a CIDR`},
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
	env.routes.SetError("10.222.3.0/24", errors.New("injected netlink failure"))
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

func TestErrorKind(t *testing.T) {
	if ErrorKind(nil) != "" || ErrorKind(errors.New("x")) != ErrorKindOther {
		t.Error("nil or plain error misclassified")
	}
	err := kindError(ErrorKindFlows, errors.New("boom"))
	if ErrorKind(err) != ErrorKindFlows || err.Error() != "boom" {
		t.Errorf("kind %q message %q", ErrorKind(err), err)
	}
}
