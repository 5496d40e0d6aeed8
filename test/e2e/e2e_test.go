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
	"os"
	"strings"
	"testing"
	"time"
)

var (
	providerName = flag.String("provider", "local", "cluster provider: local (hack/local-cluster.sh) or kind")
	keepCluster  = flag.Bool("keep-cluster", false, "local provider: leave the cluster up after the tests")
	clusterName  = flag.String("cluster-name", "nrt-e2e", "local provider: cluster name (namespaces and addresses derive from it)")
	nodeCount    = flag.Int("nodes", 3, "local provider: number of nodes")

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
		provider, cleanup, err = newLocalProvider(*clusterName, *nodeCount, *keepCluster)
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
	ctx := context.Background()
	deadline := time.Now().Add(convergeTimeout)
	for {
		state, diff := converged(ctx)
		if diff == "" {
			return state
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged after %s: %s", convergeTimeout, diff)
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

// TestARPForRemoteGatewaysAnsweredByOVS makes each node's kernel resolve
// every remote gateway (a ping to a remote pod IP, which nobody answers,
// triggers the ARP) and checks the neighbour entry holds the virtual MAC.
func TestARPForRemoteGatewaysAnsweredByOVS(t *testing.T) {
	state := waitConverged(t)
	ctx := context.Background()
	for node, dp := range state {
		if _, err := provider.Exec(ctx, node, "ip", "neigh", "flush", "dev", "antrea-gw0"); err != nil {
			t.Fatalf("flush neighbours on %s: %v", node, err)
		}
		for _, gw := range dp.Responders {
			remotePod := strings.TrimSuffix(gw, ".1") + ".5"
			_, _ = provider.Exec(ctx, node, "ping", "-c", "1", "-W", "1", remotePod)
			neigh, err := provider.Exec(ctx, node, "ip", "neigh", "show", gw, "dev", "antrea-gw0")
			if err != nil || !strings.Contains(neigh, "lladdr aa:bb:cc:dd:ee:ff") {
				t.Errorf("%s: ARP for %s not answered with the virtual MAC: %q %v", node, gw, neigh, err)
				continue
			}
			t.Logf("%s: %s", node, strings.TrimSpace(neigh))
		}
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

	kubectl(t, "patch", "node", name, "--type=merge", "-p", `{"spec":{"podCIDR":"10.222.200.0/24","podCIDRs":["10.222.200.0/24"]}}`)
	state := waitConverged(t)
	for node, dp := range state {
		if dp.Routes["10.222.200.0/24"] != "10.222.200.1" {
			t.Errorf("%s lacks the new Node's route: %s", node, dp)
		}
	}

	kubectl(t, "delete", "node", name)
	waitConverged(t)

	applyNode(t, name, "10.222.201.0/24")
	state = waitConverged(t)
	for node, dp := range state {
		if _, old := dp.Routes["10.222.200.0/24"]; old || dp.Routes["10.222.201.0/24"] != "10.222.201.1" {
			t.Errorf("%s did not follow the CIDR change: %s", node, dp)
		}
	}
}

// TestAgentRestartConvergesWithoutGap restarts one agent (SIGTERM, then
// SIGKILL) while sampling its node: every sample must still hold every
// remote Node's flow and route, and after the restart one round remains.
func TestAgentRestartConvergesWithoutGap(t *testing.T) {
	before := waitConverged(t)
	node := provider.Nodes()[len(provider.Nodes())-1]
	for _, kill := range []bool{false, true} {
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
		if err := provider.RestartAgent(context.Background(), node, kill); err != nil {
			cancel()
			t.Fatalf("restart agent of %s: %v", node, err)
		}
		after := waitConverged(t)
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
		t.Logf("kill=%v: %d samples of %s during the restart, all complete; round %v -> %v", kill, n, node, before[node].Rounds, after[node].Rounds)
		before = after
	}
}

// TestAPIServerOutage stops etcd and the API server for 30 s: the data
// plane stays as it was; when they return, changes made right after are
// followed.
func TestAPIServerOutage(t *testing.T) {
	before := waitConverged(t)
	ctx := context.Background()
	if err := provider.StopAPIServer(ctx); err != nil {
		t.Skipf("provider cannot stop the API server: %v", err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = provider.StartAPIServer(ctx)
		}
	})
	end := time.Now().Add(30 * time.Second)
	checks := 0
	for time.Now().Before(end) {
		for node, want := range before {
			dp, err := readDataPlane(ctx, provider, node)
			if err != nil {
				t.Fatalf("during the outage: %v", err)
			}
			if !dp.sameAs(want) {
				t.Fatalf("during the outage %s changed: %s, was %s", node, dp, want)
			}
			checks++
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("data plane unchanged in %d checks over 30 s of outage", checks)
	if err := provider.StartAPIServer(ctx); err != nil {
		t.Fatalf("start API server again: %v", err)
	}
	restarted = true

	const name = "e2e-after-outage"
	t.Cleanup(func() { _, _ = provider.Kubectl(context.Background(), "delete", "node", name, "--ignore-not-found") })
	applyNode(t, name, "10.222.210.0/24")
	state := waitConverged(t)
	for node, dp := range state {
		if dp.Routes["10.222.210.0/24"] != "10.222.210.1" {
			t.Errorf("%s did not resync after the outage: %s", node, dp)
		}
	}
}

// TestAgentctlCheckFindsDrift runs agentctl on a node as an operator would:
// check is clean, a route deleted by hand makes it exit 1 and name the
// route, and it is clean again once the route is back.
func TestAgentctlCheckFindsDrift(t *testing.T) {
	state := waitConverged(t)
	ctx := context.Background()
	node := provider.Nodes()[0]
	if out, err := provider.Exec(ctx, node, "agentctl", "check"); err != nil {
		t.Fatalf("agentctl check on a converged node: %v\n%s", err, out)
	}
	var dst, gw string
	for d, g := range state[node].Routes {
		dst, gw = d, g
		break
	}
	if out, err := provider.Exec(ctx, node, "ip", "route", "del", dst); err != nil {
		t.Fatalf("delete route %s: %v: %s", dst, err, out)
	}
	out, err := provider.Exec(ctx, node, "agentctl", "check")
	var exitErr interface{ ExitCode() int }
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || !strings.Contains(out, dst) {
		t.Errorf("agentctl check after deleting %s: %v (want exit 1 naming the route)\n%s", dst, err, out)
	}
	if out, err := provider.Exec(ctx, node, "ip", "route", "replace", dst, "via", gw, "dev", "antrea-gw0", "onlink", "proto", "94"); err != nil {
		t.Fatalf("restore route: %v: %s", err, out)
	}
	if out, err := provider.Exec(ctx, node, "agentctl", "check"); err != nil {
		t.Errorf("agentctl check after restoring the route: %v\n%s", err, out)
	}
}
