//go:build e2e

package e2e

// Resilience cases: the control plane away for a minute, and a
// burst of 1000 Nodes created and deleted at once. (Agent restarts under
// ARP probes are TestAgentRestartConvergesWithoutGap.)

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// agentIDs identifies every node's running agent (see Provider.AgentID).
func agentIDs(t *testing.T) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, node := range provider.Nodes() {
		id, err := provider.AgentID(context.Background(), node)
		if err != nil {
			t.Fatalf("agent of %s: %v", node, err)
		}
		ids[node] = id
	}
	return ids
}

// sameAgents fails unless every node still runs the agent it ran when ids
// were taken: no restart, no crash (nothing restarts a crashed agent of
// the local cluster; kind's kubelet would, and the restart count tells).
func sameAgents(t *testing.T, ids map[string]string, when string) {
	t.Helper()
	for node, id := range ids {
		got, err := provider.AgentID(context.Background(), node)
		if err != nil {
			t.Fatalf("%s: agent of %s: %v (was %s)", when, node, err, id)
		}
		if got != id {
			t.Fatalf("%s: agent of %s restarted: %s, was %s", when, node, got, id)
		}
	}
}

// contains reports whether d holds every responder and route of o (and
// perhaps more).
func (d dataPlane) contains(o dataPlane) bool {
	have := map[string]bool{}
	for _, r := range d.Responders {
		have[r] = true
	}
	for _, r := range o.Responders {
		if !have[r] {
			return false
		}
	}
	for k, v := range o.Routes {
		if d.Routes[k] != v {
			return false
		}
	}
	return true
}

// holdsAnyOf returns the first of cidrs that dp has a route or a responder
// for, or "".
func (d dataPlane) holdsAnyOf(cidrs []string) string {
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			continue
		}
		if _, ok := d.Routes[n.String()]; ok {
			return c
		}
		gw := gatewayOf(n).String()
		for _, r := range d.Responders {
			if r == gw {
				return c
			}
		}
	}
	return ""
}

// outage is how long etcd and the API server stay down.
const outage = 60 * time.Second

// TestAPIServerOutage stops etcd and the API server for a minute. During it
// the data plane must stay exactly as it was and every agent must keep
// running (same process: no exit, no crash loop). Meanwhile a Node is
// deleted that the agents cannot hear of: with the local provider, in etcd
// itself while kube-apiserver is still down (see below). When the API
// server is back, that Node's flows and routes must go from every node and
// a Node created afterwards must be installed everywhere.
//
// Why delete in etcd: in production a Node deleted while an agent's watch
// is broken (control plane restarting, API unreachable from the node)
// reaches that agent only through a relist once it can watch again; the
// DELETE event itself is never delivered to it. The API server keeps Nodes
// in etcd (/registry/minions/<name>), so removing the key while
// kube-apiserver is down is exactly that: when it starts, the object is
// gone, the agents' reflectors come back with a resourceVersion older than
// anything the new API server can watch from (410 Gone) and relist, and the
// Node is missing from the list, which the informer turns into a delete
// (a tombstone, DeletedFinalStateUnknown). Deleting through the API right
// after it returns would not test this: the agents might get the DELETE
// event on a fresh watch. Blocking one node's access to the API instead
// would leave the API server up, not an outage of it. The Node has no
// finalizers, so the API server would have removed the key the same way.
func TestAPIServerOutage(t *testing.T) {
	ctx := context.Background()
	const gone, added = "e2e-outage-deleted", "e2e-after-outage"
	t.Cleanup(func() {
		_, _ = provider.Kubectl(context.Background(), "delete", "node", gone, added, "--ignore-not-found")
	})
	goneCIDRs := podCIDRs(t, "10.222.211.0/24", "fd00:10:222:211::/64")
	applyNode(t, gone, goneCIDRs...)
	before := waitConverged(t)
	assertRoutes(t, before, "before the outage", goneCIDRs)
	ids := agentIDs(t)

	deleter, canDelete := provider.(behindAPIDeleter)
	stopped := time.Now()
	if err := provider.StopAPIServer(ctx); err != nil {
		t.Skipf("provider cannot stop the API server: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = provider.StartAPIServer(context.Background())
		}
	})
	checks := 0
	check := func(when string) {
		t.Helper()
		for node, want := range before {
			dp, err := readDataPlane(ctx, provider, node)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if !dp.sameAs(want) {
				t.Fatalf("%s, %s changed: %s, was %s", when, node, dp, want)
			}
			checks++
		}
		sameAgents(t, ids, when)
	}
	for time.Since(stopped) < outage {
		check(fmt.Sprintf("%s into the outage", time.Since(stopped).Round(time.Second)))
		time.Sleep(2 * time.Second)
	}
	if canDelete {
		if err := deleter.DeleteNodeBehindAPIServer(ctx, gone); err != nil {
			t.Fatalf("delete Node %s in etcd: %v", gone, err)
		}
		// The agents cannot know yet: still everything as before.
		check("after deleting the Node in etcd, kube-apiserver still down")
	}
	if err := provider.StartAPIServer(ctx); err != nil {
		t.Fatalf("start API server again: %v", err)
	}
	restarted = true
	back := time.Now()
	t.Logf("API server down for %s; data plane unchanged and agents the same processes in %d checks", back.Sub(stopped).Round(time.Second), checks)
	if canDelete {
		if out, err := provider.Kubectl(ctx, "get", "node", gone, "-o", "name"); err == nil || !strings.Contains(out, "NotFound") {
			t.Fatalf("Node %s deleted in etcd is still served by the API server: %v %s", gone, err, out)
		}
		t.Logf("Node %s was deleted in etcd while kube-apiserver was down", gone)
	} else {
		t.Logf("provider %T cannot delete behind the API server: deleting Node %s through it now", provider, gone)
		kubectl(t, "delete", "node", gone)
	}
	addedCIDRs := podCIDRs(t, "10.222.212.0/24", "fd00:10:222:212::/64")
	applyNode(t, added, addedCIDRs...)
	created := time.Now()

	// The agents' informers come back on client-go's reflector backoff
	// (exponential up to 30 s, jitter factor 1.0), so the first relist
	// after the outage may come up to about a minute after the API server
	// is back. The bound allows for that; the log shows the times.
	var goneAt time.Time
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if goneAt.IsZero() {
			still := ""
			for _, node := range provider.Nodes() {
				dp, err := readDataPlane(ctx, provider, node)
				if err != nil || dp.holdsAnyOf(goneCIDRs) != "" {
					still = node
					break
				}
			}
			if still == "" {
				goneAt = time.Now()
			}
		}
		state, diff := converged(ctx)
		if diff == "" && !goneAt.IsZero() {
			assertRoutes(t, state, "after the outage", addedCIDRs)
			for node, dp := range state {
				if c := dp.holdsAnyOf(goneCIDRs); c != "" {
					t.Errorf("%s still routes %s of Node %s: %s", node, c, gone, dp)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 minutes after the API server came back: not converged (%s), Node %s gone everywhere: %v", diff, gone, !goneAt.IsZero())
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("after the outage: Node %s (deleted behind the API server) gone from every node %s after the API server was back; Node %s on every node %s after its creation",
		gone, goneAt.Sub(back).Round(100*time.Millisecond), added, time.Since(created).Round(100*time.Millisecond))
	sameAgents(t, ids, "after the outage")
}

// burstNodes is how many Nodes TestNodeBurst creates at once.
const burstNodes = 1000

// burstWorkers is how many Create (then Delete) calls are in flight at once.
const burstWorkers = 32

const burstLabel = "noderoute-e2e-burst"

// Pod CIDRs of the burst's Nodes: 10.128.0.0/24, 10.128.1.0/24, ...
// (within 10.128.0.0/14 for up to 1024 Nodes) and fd00:e2e:b:<i>::/64,
// away from the cluster's own (checked before creating anything).
var burstRange4, burstRange6 = testsupport.MustCIDR("10.128.0.0/14"), testsupport.MustCIDR("fd00:e2e:b::/48")

// burstCIDRs returns Node i's pod CIDRs of the given families, written as
// the API server wants them (canonical).
func burstCIDRs(i int, v4, v6 bool) []string {
	var out []string
	if v4 {
		n := &net.IPNet{IP: net.IPv4(10, byte(128+i/256), byte(i%256), 0).To4(), Mask: net.CIDRMask(24, 32)}
		out = append(out, n.String())
	}
	if v6 {
		ip := append(net.IP(nil), burstRange6.IP...)
		ip[6], ip[7] = byte(i>>8), byte(i)
		out = append(out, (&net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)}).String())
	}
	return out
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// routeCount counts a node's routes with our protocol, both families.
func routeCount(ctx context.Context, node string) (int, error) {
	n := 0
	for _, family := range []string{"-4", "-6"} {
		out, err := provider.Exec(ctx, node, "ip", family, "route", "show", "proto", "94")
		if err != nil {
			return 0, fmt.Errorf("list routes on %s: %w: %s", node, err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) != "" {
				n++
			}
		}
	}
	return n, nil
}

// waitRouteCounts waits until every node has want[node] routes of ours and
// returns when each got there, from begin.
func waitRouteCounts(t *testing.T, want map[string]int, begin time.Time, timeout time.Duration, what string) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	reached := map[string]time.Duration{}
	last := map[string]int{}
	deadline := time.Now().Add(timeout)
	for len(reached) < len(want) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for node, w := range want {
			if _, ok := reached[node]; ok {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := routeCount(ctx, node)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					last[node] = n
					if n == w {
						reached[node] = time.Since(begin)
					}
				}
			}()
		}
		wg.Wait()
		if len(reached) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not every node got there within %s: routes %v, want %v", what, timeout, last, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return reached
}

// forEachBurstNode runs fn for i in [0, burstNodes) on burstWorkers
// goroutines and returns the number of failures and the first error.
func forEachBurstNode(fn func(i int) error) (int64, error) {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < burstWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= burstNodes {
					return
				}
				if err := fn(i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return failed.Load(), err
}

func formatDurations(m map[string]time.Duration) string {
	var parts []string
	for _, node := range provider.Nodes() {
		parts = append(parts, fmt.Sprintf("%s %s", node, m[node].Round(100*time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// TestNodeBurst creates 1000 Nodes at once (32 Creates in flight), waits
// until every agent has a route for each of their pod CIDRs, then deletes
// them all at once and waits until every route is gone. Throughout, every
// node must keep the flows and routes of the cluster's own Nodes (sampled)
// and every agent must stay the same process; at both ends the data plane
// must be exactly what the API wants (flows too).
func TestNodeBurst(t *testing.T) {
	ctx := context.Background()
	before := waitConverged(t)
	ids := agentIDs(t)
	client, err := provider.Clientset()
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	v4, v6 := clusterFamilies(t)
	families := 0
	for _, f := range []bool{v4, v6} {
		if f {
			families++
		}
	}
	cidrs, err := nodeCIDRs(ctx, provider)
	if err != nil {
		t.Fatal(err)
	}
	for node, list := range cidrs {
		for _, c := range list {
			if _, n, err := net.ParseCIDR(c); err == nil && (overlaps(n, burstRange4) || overlaps(n, burstRange6)) {
				t.Fatalf("Node %s's pod CIDR %s overlaps the burst's %s / %s: pick other ranges", node, c, burstRange4, burstRange6)
			}
		}
	}
	deleteAll := func() {
		_ = client.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: burstLabel + "=true"})
	}
	t.Cleanup(deleteAll)
	baseRoutes, fullRoutes := map[string]int{}, map[string]int{}
	for node, dp := range before {
		baseRoutes[node] = len(dp.Routes)
		fullRoutes[node] = len(dp.Routes) + burstNodes*families
	}

	// Sample the cluster's own Nodes' flows and routes on every node until
	// the end: they must never be missing, whatever the burst does.
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var samples, broken atomic.Int64
	var firstBroken atomic.Value
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampleCtx.Err() == nil {
			for _, node := range provider.Nodes() {
				dp, err := readDataPlane(sampleCtx, provider, node)
				if err != nil {
					continue // stopped, or a dump cut short
				}
				samples.Add(1)
				if !dp.contains(before[node]) {
					broken.Add(1)
					firstBroken.CompareAndSwap(nil, fmt.Sprintf("%s has %s, lacking some of %s", node, dp, before[node]))
				}
			}
		}
	}()
	defer func() {
		stopSampling()
		<-sampled
	}()

	begin := time.Now()
	failed, err := forEachBurstNode(func(i int) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("e2e-burst-%04d", i),
			Labels: map[string]string{burstLabel: "true"},
		}}
		n.Spec.PodCIDRs = burstCIDRs(i, v4, v6)
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
		_, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		return err
	})
	createCalls := time.Since(begin)
	if failed > 0 {
		t.Fatalf("%d of %d Creates failed, first: %v", failed, burstNodes, err)
	}
	t.Logf("created %d Nodes (%d pod CIDRs each) in %s (%d in flight)", burstNodes, families, createCalls.Round(time.Millisecond), burstWorkers)
	created := waitRouteCounts(t, fullRoutes, begin, 5*time.Minute, "after the creates")
	t.Logf("every route on each node, from the first Create: %s", formatDurations(created))
	state := waitConvergedWithin(t, 5*time.Minute)
	t.Logf("converged (flows and routes exactly as the API wants) %s after the first Create", time.Since(begin).Round(100*time.Millisecond))
	for node, dp := range state {
		if len(dp.Responders) != fullRoutes[node] {
			t.Errorf("%s has %d responders, want %d", node, len(dp.Responders), fullRoutes[node])
		}
	}
	sameAgents(t, ids, "after the creates")

	begin = time.Now()
	failed, err = forEachBurstNode(func(i int) error {
		err := client.CoreV1().Nodes().Delete(ctx, fmt.Sprintf("e2e-burst-%04d", i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	deleteCalls := time.Since(begin)
	if failed > 0 {
		t.Fatalf("%d of %d Deletes failed, first: %v", failed, burstNodes, err)
	}
	t.Logf("deleted the %d Nodes in %s (%d in flight)", burstNodes, deleteCalls.Round(time.Millisecond), burstWorkers)
	deleted := waitRouteCounts(t, baseRoutes, begin, 5*time.Minute, "after the deletes")
	t.Logf("every route gone on each node, from the first Delete: %s", formatDurations(deleted))
	state = waitConvergedWithin(t, 5*time.Minute)
	t.Logf("converged %s after the first Delete", time.Since(begin).Round(100*time.Millisecond))
	for node, dp := range state {
		if !dp.sameAs(before[node]) {
			t.Errorf("%s after the burst: %s, before it: %s", node, dp, before[node])
		}
	}
	sameAgents(t, ids, "after the deletes")

	stopSampling()
	<-sampled
	if n := broken.Load(); n > 0 {
		t.Errorf("%d of %d samples lacked a flow or route of the cluster's own Nodes; first: %v", n, samples.Load(), firstBroken.Load())
	}
	if samples.Load() == 0 {
		t.Errorf("no sample of the data plane was taken during the burst")
	}
	t.Logf("%d samples of the nodes' data plane during the burst: the cluster's own Nodes' flows and routes always there", samples.Load())
}
