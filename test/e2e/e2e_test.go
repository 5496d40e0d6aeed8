//go:build e2e

// Package e2e runs the agent the way it runs in a cluster: a real API
// server, several nodes, one agent per node. Run with `make test-e2e`
// (local provider) or hack/kind-e2e.sh (kind provider).
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/noderoute/noderoute/internal/testsupport"
)

var (
	providerName = flag.String("provider", "local", "cluster provider: local (hack/local-cluster.sh) or kind")
	keepCluster  = flag.Bool("keep-cluster", false, "local provider: leave the cluster up after the tests")
	clusterName  = flag.String("cluster-name", "nrt-e2e", "local provider: cluster name (namespaces and addresses derive from it)")
	nodeCount    = flag.Int("nodes", 3, "local provider: number of nodes")
	ipFamily     = flag.String("ip-family", "dual", "local provider: pod CIDRs of the cluster: ipv4, ipv6 or dual (both; the default, so that one run covers ARP and NDP)")

	provider Provider
)

// convergeTimeout bounds every wait for the data plane to follow the API.
// It is a correctness bound for a loaded 2-core machine, not a performance
// goal: hack/ benchmarks measure speed.
const convergeTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	var cleanup func()
	var err error
	switch *providerName {
	case "local":
		provider, cleanup, err = newLocalProvider(*clusterName, *nodeCount, *ipFamily, *keepCluster)
	case "kind":
		provider, cleanup, err = newKindProvider()
	default:
		err = fmt.Errorf("unknown provider %q", *providerName)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set up %s provider: %v\n", *providerName, err)
		if cleanup != nil {
			cleanup()
		}
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// waitConverged waits until every node holds exactly what the Nodes in the
// API want, with a single cookie round in table 20.
func waitConverged(t *testing.T) map[string]dataPlane {
	t.Helper()
	return waitConvergedWithin(t, convergeTimeout)
}

// waitConvergedWithin is waitConverged with another bound.
func waitConvergedWithin(t *testing.T, timeout time.Duration) map[string]dataPlane {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		state, diff := converged(ctx)
		if diff == "" {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged after %s: %s", timeout, diff)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// converged returns each node's data plane and, when it is not what the API
// wants, a description of the first difference.
func converged(ctx context.Context) (map[string]dataPlane, string) {
	cidrs, err := nodeCIDRs(ctx, provider)
	if err != nil {
		return nil, err.Error()
	}
	state := map[string]dataPlane{}
	for _, node := range provider.Nodes() {
		dp, err := readDataPlane(ctx, provider, node)
		if err != nil {
			return nil, err.Error()
		}
		want := wanted(node, cidrs)
		if !dp.sameAs(want) {
			return nil, fmt.Sprintf("node %s has %s, want %s", node, dp, want)
		}
		if len(dp.Rounds) != 1 {
			return nil, fmt.Sprintf("node %s has flows of rounds %v", node, dp.Rounds)
		}
		state[node] = dp
	}
	return state, ""
}

var (
	familiesOnce     sync.Once
	hasIPv4, hasIPv6 bool
)

// clusterFamilies tells which address families the cluster's own Nodes
// have pod CIDRs of, whatever the provider.
func clusterFamilies(t *testing.T) (v4, v6 bool) {
	t.Helper()
	familiesOnce.Do(func() {
		cidrs, err := nodeCIDRs(context.Background(), provider)
		if err != nil {
			t.Fatalf("read the Nodes' pod CIDRs: %v", err)
		}
		for _, node := range provider.Nodes() {
			for _, c := range cidrs[node] {
				if strings.Contains(c, ":") {
					hasIPv6 = true
				} else {
					hasIPv4 = true
				}
			}
		}
	})
	return hasIPv4, hasIPv6
}

// podCIDRs returns the CIDRs a test Node gets in this cluster: v4, v6 or
// both (IPv4 first), as the cluster's own Nodes have.
func podCIDRs(t *testing.T, v4, v6 string) []string {
	t.Helper()
	has4, has6 := clusterFamilies(t)
	var out []string
	if has4 {
		out = append(out, v4)
	}
	if has6 {
		out = append(out, v6)
	}
	return out
}

// assertRoutes fails unless every node routes each of cidrs through its
// first address.
func assertRoutes(t *testing.T, state map[string]dataPlane, what string, cidrs []string) {
	t.Helper()
	for node, dp := range state {
		for _, c := range cidrs {
			_, n, _ := net.ParseCIDR(c)
			if dp.Routes[n.String()] != gatewayOf(n).String() {
				t.Errorf("%s: %s lacks the route to %s: %s", what, node, n, dp)
			}
		}
	}
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := provider.Kubectl(context.Background(), args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func applyNode(t *testing.T, name string, podCIDRs ...string) {
	t.Helper()
	spec := ""
	if len(podCIDRs) > 0 {
		spec = fmt.Sprintf(`,"spec":{"podCIDR":%q,"podCIDRs":["%s"]}`, podCIDRs[0], strings.Join(podCIDRs, `","`))
	}
	manifest := fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{"noderoute-e2e":"true"}}%s}`, name, spec)
	kubectlStdin(t, manifest, "apply", "-f", "-")
}

func kubectlStdin(t *testing.T, stdin string, args ...string) {
	t.Helper()
	sp, ok := provider.(interface {
		KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error)
	})
	if !ok {
		t.Fatalf("provider %T cannot pass stdin to kubectl", provider)
	}
	if out, err := sp.KubectlStdin(context.Background(), stdin, args...); err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func TestEveryNodeConverges(t *testing.T) {
	state := waitConverged(t)
	for node, dp := range state {
		t.Logf("%s: %s", node, dp)
	}
}

// agentExecer runs a command in a node's agent container the way an
// operator does (kind: kubectl exec); providers without one use Exec.
type agentExecer interface {
	AgentExec(ctx context.Context, node string, cmd ...string) (string, error)
}

// TestAgentctlPrintsAntreasTable20 checks the node with pod CIDR
// 10.222.1.0/24, in a cluster whose other Nodes have 10.222.0.0/24 and
// 10.222.2.0/24 (both providers make that cluster), against Antrea's
// ARP-responder table of such a node (docs/design.md): `agentctl flows
// --table 20 --no-stats` prints its four lines byte for byte, cookies of the
// first flow round included.
func TestAgentctlPrintsAntreasTable20(t *testing.T) {
	state := waitConverged(t)
	ctx := context.Background()
	cidrs, err := nodeCIDRs(ctx, provider)
	if err != nil {
		t.Fatal(err)
	}
	node := ""
	var others []string
	for n, cs := range cidrs {
		for _, c := range cs {
			if strings.Contains(c, ":") {
				continue
			}
			if c == "10.222.1.0/24" {
				node = n
			} else {
				others = append(others, c)
			}
		}
	}
	sort.Strings(others)
	if node == "" || strings.Join(others, " ") != "10.222.0.0/24 10.222.2.0/24" {
		t.Skipf("the cluster's IPv4 pod CIDRs are not 10.222.{0,1,2}.0/24: %v", cidrs)
	}
	if rounds := state[node].Rounds; len(rounds) != 1 || rounds[0] != "1" {
		t.Skipf("%s's agent is at flow round %v, not the first one: the cluster is not new (kept from an earlier run?)", node, rounds)
	}
	seed, err := os.ReadFile(repoRoot() + "/pkg/ovs/openflow/testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"# table=20 ArpResponder"}
	for _, l := range strings.Split(strings.TrimSpace(string(seed)), "\n") {
		want = append(want, " "+l)
	}
	cmd := []string{"agentctl", "flows", "--table", "20", "--no-stats"}
	exec := provider.Exec
	if ae, ok := provider.(agentExecer); ok {
		exec = ae.AgentExec
	}
	out, err := exec(ctx, node, cmd...)
	if err != nil || out != strings.Join(want, "\n") {
		t.Fatalf("%s: %s: %v\n%s\nwant:\n%s", node, strings.Join(cmd, " "), err, out, strings.Join(want, "\n"))
	}
	t.Logf("%s: %s:\n%s", node, strings.Join(cmd, " "), out)
}

// TestARPAndNDPForRemoteGatewaysAnsweredByOVS makes each node's kernel
// resolve every remote gateway, IPv4 (ARP) and IPv6 (Neighbor
// Solicitation) alike: a ping to a remote pod IP, which nobody answers,
// makes the kernel resolve the route's gateway. The neighbour entry must
// hold the virtual MAC, learnt from OVS's answer (REACHABLE).
func TestARPAndNDPForRemoteGatewaysAnsweredByOVS(t *testing.T) {
	state := waitConverged(t)
	ctx := context.Background()
	families := map[string]int{}
	for node, dp := range state {
		for _, family := range []string{"-4", "-6"} {
			if out, err := provider.Exec(ctx, node, "ip", family, "neigh", "flush", "dev", "antrea-gw0"); err != nil {
				t.Fatalf("flush neighbours on %s: %v: %s", node, err, out)
			}
		}
		for _, gw := range dp.Responders {
			family := "-4"
			if strings.Contains(gw, ":") {
				family = "-6"
			}
			families[family]++
			// The gateways end in 1 (.1 or ::1); a pod behind it.
			remotePod := strings.TrimSuffix(gw, "1") + "5"
			_, _ = provider.Exec(ctx, node, "ping", family, "-c", "1", "-W", "1", remotePod)
			neigh, err := provider.Exec(ctx, node, "ip", family, "neigh", "show", gw, "dev", "antrea-gw0")
			if err != nil || !strings.Contains(neigh, "lladdr aa:bb:cc:dd:ee:ff") || !strings.Contains(neigh, "REACHABLE") {
				t.Errorf("%s: neighbour discovery for %s not answered with the virtual MAC: %q %v", node, gw, neigh, err)
				continue
			}
			t.Logf("%s: ip %s neigh: %s", node, family, strings.TrimSpace(neigh))
		}
	}
	if v4, v6 := clusterFamilies(t); (v4 && families["-4"] == 0) || (v6 && families["-6"] == 0) {
		t.Errorf("resolved %v, but the cluster has IPv4 %v, IPv6 %v", families, v4, v6)
	}
}

// TestNodeLifecycleFollowed: a Node created without a pod CIDR changes
// nothing; getting one adds it everywhere; deleting it removes it; coming
// back with another CIDR (a pod CIDR cannot change in place) is followed.
func TestNodeLifecycleFollowed(t *testing.T) {
	const name = "e2e-extra"
	t.Cleanup(func() { _, _ = provider.Kubectl(context.Background(), "delete", "node", name, "--ignore-not-found") })

	applyNode(t, name)
	waitConverged(t)

	first := podCIDRs(t, "10.222.200.0/24", "fd00:10:222:200::/64")
	kubectl(t, "patch", "node", name, "--type=merge", "-p",
		fmt.Sprintf(`{"spec":{"podCIDR":%q,"podCIDRs":["%s"]}}`, first[0], strings.Join(first, `","`)))
	state := waitConverged(t)
	assertRoutes(t, state, "new Node", first)

	kubectl(t, "delete", "node", name)
	waitConverged(t)

	second := podCIDRs(t, "10.222.201.0/24", "fd00:10:222:201::/64")
	applyNode(t, name, second...)
	state = waitConverged(t)
	assertRoutes(t, state, "CIDR change", second)
	for node, dp := range state {
		for _, old := range first {
			if _, ok := dp.Routes[old]; ok {
				t.Errorf("%s kept the old CIDR %s: %s", node, old, dp)
			}
		}
	}
}

// TestAgentRestartConvergesWithoutGap restarts one agent (SIGTERM, then
// SIGKILL) while sampling its node and, where the provider allows, while
// that node ARPs for every remote IPv4 gateway 20 times a second out of
// antrea-gw0: every sample must still hold every remote Node's flow and
// route, no probe may go unanswered, and after the restart one round
// remains.
func TestAgentRestartConvergesWithoutGap(t *testing.T) {
	before := waitConverged(t)
	node := provider.Nodes()[len(provider.Nodes())-1]
	var gateways []string
	for _, gw := range before[node].Responders {
		if !strings.Contains(gw, ":") {
			gateways = append(gateways, gw)
		}
	}
	ie, canProbe := provider.(interruptibleExecer)
	switch {
	case !canProbe:
		t.Logf("provider %T cannot stop a command with SIGINT: no ARP probes, sampling only", provider)
	case len(gateways) == 0:
		t.Logf("%s has no remote IPv4 gateway (IPv6-only cluster): no ARP probes, sampling only", node)
	default:
		checkProberDetectsLoss(t, node)
	}
	for _, kill := range []bool{false, true} {
		var probes *probeLoop
		if canProbe && len(gateways) > 0 {
			probes = startARPProbes(t, ie, node, gateways)
			t.Cleanup(func() { probes.stop() }) // if the test stops early
		}
		ctx, cancel := context.WithCancel(context.Background())
		samples := make(chan dataPlane, 1000)
		go func() {
			defer close(samples)
			for ctx.Err() == nil {
				if dp, err := readDataPlane(ctx, provider, node); err == nil {
					samples <- dp
				}
			}
		}()
		begin := time.Now()
		if err := provider.RestartAgent(context.Background(), node, kill); err != nil {
			cancel()
			t.Fatalf("restart agent of %s: %v", node, err)
		}
		after := waitConverged(t)
		window := time.Since(begin)
		// A few more probes on the new round's flows alone.
		time.Sleep(500 * time.Millisecond)
		cancel()
		n := 0
		for dp := range samples {
			n++
			if !dp.sameAs(before[node]) {
				t.Errorf("kill=%v: sample %d on %s differs from before the restart: %s", kill, n, node, dp)
			}
		}
		if after[node].Rounds[0] == before[node].Rounds[0] {
			t.Errorf("kill=%v: round did not advance on restart (%v)", kill, after[node].Rounds)
		}
		t.Logf("kill=%v: restart and convergence took %s; %d samples of %s during it, all complete; round %v -> %v",
			kill, window.Round(time.Millisecond), n, node, before[node].Rounds, after[node].Rounds)
		if probes != nil {
			results, errs := probes.stop()
			for _, err := range errs {
				t.Errorf("kill=%v: %v", kill, err)
			}
			for _, r := range results {
				t.Logf("kill=%v: ARP probes from %s for %s", kill, node, r)
				if r.Lost > 0 {
					t.Errorf("kill=%v: %d of %d ARP requests from %s for %s went unanswered during the restart:\n%s", kill, r.Lost, r.Sent, node, r.Gateway, r.Output)
				}
				// Half the nominal rate over the restart window: a
				// generous bound that still catches a prober that
				// stalled or never ran.
				if min := int(window.Seconds() * probesPerSec / 2); r.Sent < min {
					t.Errorf("kill=%v: only %d ARP requests for %s during a %s restart window (want at least %d)", kill, r.Sent, r.Gateway, window.Round(time.Millisecond), min)
				}
			}
		}
		before = after
	}
}

// TestAgentctlCheckFindsDrift runs agentctl on a node as an operator would:
// check is clean, a route deleted by hand (an IPv6 one in a cluster with
// IPv6) makes it exit 1 and name the route, and it is clean again once the
// route is back. In a cluster with IPv6, an NDP responder deleted by hand
// is found too, and comes back when the agent restarts.
func TestAgentctlCheckFindsDrift(t *testing.T) {
	state := waitConverged(t)
	ctx := context.Background()
	node := provider.Nodes()[0]
	if out, err := provider.Exec(ctx, node, "agentctl", "check"); err != nil {
		t.Fatalf("agentctl check on a converged node: %v\n%s", err, out)
	}
	var dst, gw string
	for _, d := range testsupport.SortedKeys(state[node].Routes) {
		dst, gw = d, state[node].Routes[d]
		if strings.Contains(d, ":") {
			break
		}
	}
	// The agent repairs a deleted route of ours within a fraction of a
	// second (route watcher), so the drift check gets a route it cannot
	// repair: ours replaced by a foreign one (another protocol), which it
	// never overwrites.
	if out, err := provider.Exec(ctx, node, "ip", "route", "replace", dst, "dev", "antrea-gw0"); err != nil {
		t.Fatalf("replace route %s by a foreign one: %v: %s", dst, err, out)
	}
	out, err := provider.Exec(ctx, node, "agentctl", "check")
	var exitErr interface{ ExitCode() int }
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || !strings.Contains(out, dst) {
		t.Errorf("agentctl check after replacing %s by a foreign route: %v (want exit 1 naming the route)\n%s", dst, err, out)
	}
	t.Logf("%s: agentctl check found route %s replaced by hand (exit 1)", node, dst)
	if out, err := provider.Exec(ctx, node, "ip", "route", "replace", dst, "via", gw, "dev", "antrea-gw0", "onlink", "proto", "94"); err != nil {
		t.Fatalf("restore route: %v: %s", err, out)
	}
	if out, err := provider.Exec(ctx, node, "agentctl", "check"); err != nil {
		t.Errorf("agentctl check after restoring the route: %v\n%s", err, out)
	}

	if _, v6 := clusterFamilies(t); !v6 {
		return
	}
	var target string
	for _, r := range state[node].Responders {
		if strings.Contains(r, ":") {
			target = r
			break
		}
	}
	// A responder whose actions were changed by hand keeps our cookie and
	// match, so the flow check (which compares those) leaves it; check
	// compares actions too.
	match := "table=21,icmp6,icmp_type=135,nd_target=" + target
	if out, err := provider.Exec(ctx, node, "ovs-ofctl", "mod-flows", "br-int", match+",actions=drop"); err != nil {
		t.Fatalf("change the NDP responder for %s: %v: %s", target, err, out)
	}
	out, err = provider.Exec(ctx, node, "agentctl", "check")
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || !strings.Contains(out, "changed flow") || !strings.Contains(out, "nd_target="+target+" ") {
		t.Errorf("agentctl check after changing the NDP responder for %s: %v (want exit 1 naming the flow)\n%s", target, err, out)
	}
	t.Logf("%s: agentctl check found the NDP responder for %s changed by hand (exit 1)", node, target)
	// Deleted, it is missing: the agent's flow check puts it back, as it
	// should be, by itself.
	start := time.Now()
	if out, err := provider.Exec(ctx, node, "ovs-ofctl", "del-flows", "br-int", match); err != nil {
		t.Fatalf("delete the NDP responder for %s: %v: %s", target, err, out)
	}
	for {
		out, err := provider.Exec(ctx, node, "agentctl", "check")
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("NDP responder for %s not restored by the agent 30 s after del-flows: %v\n%s", target, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: NDP responder for %s deleted by hand, restored by the agent, agentctl check clean %s later", node, target, time.Since(start).Round(time.Millisecond))
}
