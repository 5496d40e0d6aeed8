//go:build e2e

package e2e

// Least privilege (docs/security.md): the agent needs
// CAP_NET_ADMIN and no other capability.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// capNetAdmin is CAP_NET_ADMIN's bit (capability 12) as /proc/<pid>/status
// writes a capability set.
const capNetAdmin = "0000000000001000"

// noCaps runs a command in a node the way the agent runs when confined,
// but with no capability at all: as root, empty bounding, inheritable and
// ambient sets, no_new_privs.
var noCaps = []string{"setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs", "--"}

// TestAgentNeedsOnlyNetAdmin restarts one node's agent as root with
// CAP_NET_ADMIN as its only capability (bounding set NET_ADMIN, nothing
// inheritable or ambient, no_new_privs: what the DaemonSet's
// securityContext gives it) and checks that it does all of its work: it
// sets the gateway interface's addresses again (removed by hand before
// the restart), takes over the flows with a new round, follows a Node
// added and deleted, routes included, and repairs a route deleted by hand
// and a gateway interface flap through its watchers (checkWatcherRepair). Before that, with no capability at
// all, the very first netlink change the agent makes (setting antrea-gw0
// up) must be refused, so that the check shows the confinement is real;
// reading routes and agentctl check work without any capability.
func TestAgentNeedsOnlyNetAdmin(t *testing.T) {
	cr, ok := provider.(capsRestarter)
	if !ok {
		t.Skipf("provider %T cannot start an agent with chosen capabilities (the kind provider runs the DaemonSet, which adds NET_ADMIN only; test/deploy checks its pod's capability sets)", provider)
	}
	ctx := context.Background()
	before := waitConverged(t)
	nodes := provider.Nodes()
	node := nodes[len(nodes)/2]

	// No capability: netlink changes refused, reads and agentctl fine.
	out, err := provider.Exec(ctx, node, append(noCaps, "ip", "link", "set", "dev", "antrea-gw0", "up")...)
	if err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("on %s without capabilities, ip link set antrea-gw0 up: %v %q, want Operation not permitted (is setpriv confining?)", node, err, out)
	}
	t.Logf("%s, no capabilities: ip link set dev antrea-gw0 up: %s", node, strings.TrimSpace(out))
	if out, err := provider.Exec(ctx, node, append(noCaps, "ip", "route", "show", "dev", "antrea-gw0")...); err != nil {
		t.Fatalf("on %s without capabilities, ip route show: %v %q", node, err, out)
	}
	if out, err := provider.Exec(ctx, node, append(noCaps, "agentctl", "check")...); err != nil {
		t.Errorf("on %s without capabilities, agentctl check: %v\n%s", node, err, out)
	} else {
		t.Logf("%s, no capabilities: agentctl check: %s", node, firstLine(out))
	}

	// The agent must put the gateway addresses back itself: that is a
	// netlink change (RTM_NEWADDR) it can only make with NET_ADMIN.
	gwAddrs, err := provider.Exec(ctx, node, "ip", "-o", "addr", "show", "dev", "antrea-gw0", "scope", "global")
	if err != nil {
		t.Fatalf("addresses of antrea-gw0 on %s: %v %s", node, err, gwAddrs)
	}
	var addrs []string
	for _, l := range strings.Split(gwAddrs, "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				addrs = append(addrs, f[i+1])
			}
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("antrea-gw0 on %s has no global address: %q", node, gwAddrs)
	}

	t.Cleanup(func() {
		// Back to the default (root, every capability) for the cases
		// that follow, whatever happened here.
		if err := provider.RestartAgent(context.Background(), node, false); err != nil {
			t.Errorf("restart the agent of %s with its default capabilities: %v", node, err)
		}
		waitConverged(t)
	})
	// Removed just before the running agent is stopped; nothing but the
	// agent's start-up puts them back.
	for _, a := range addrs {
		if out, err := provider.Exec(ctx, node, "ip", "addr", "del", a, "dev", "antrea-gw0"); err != nil {
			t.Fatalf("remove %s from antrea-gw0 on %s: %v %s", a, node, err, out)
		}
	}
	if err := cr.RestartAgentWithCaps(ctx, node, "net_admin"); err != nil {
		t.Fatalf("restart agent of %s with net_admin only: %v", node, err)
	}
	status, err := cr.AgentStatus(node)
	if err != nil {
		t.Fatalf("agent of %s: %v", node, err)
	}
	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": capNetAdmin, "CapEff": capNetAdmin,
		"CapBnd": capNetAdmin, "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Uid": "0\t0\t0\t0"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("agent of %s: %s %q, want %q", node, k, status[k], v)
		}
	}
	t.Logf("agent of %s: CapEff %s (NET_ADMIN only), CapBnd %s, CapPrm %s, CapInh %s, CapAmb %s, NoNewPrivs %s, Uid %s",
		node, status["CapEff"], status["CapBnd"], status["CapPrm"], status["CapInh"], status["CapAmb"], status["NoNewPrivs"], strings.Fields(status["Uid"])[0])
	if t.Failed() {
		t.FailNow()
	}
	id, err := provider.AgentID(ctx, node)
	if err != nil {
		t.Fatal(err)
	}

	state := waitConverged(t)
	if state[node].Rounds[0] == before[node].Rounds[0] {
		t.Errorf("the confined agent did not take the flows over: round %v, was %v", state[node].Rounds, before[node].Rounds)
	}
	out, err = provider.Exec(ctx, node, "ip", "-o", "addr", "show", "dev", "antrea-gw0", "scope", "global")
	for _, a := range addrs {
		if err != nil || !strings.Contains(out, " "+a+" ") {
			t.Errorf("the confined agent did not put %s back on antrea-gw0 of %s: %v %q", a, node, err, out)
		}
	}
	if fi, err := os.Stat(cr.AgentSocket(node)); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("local API socket %s: %v, mode %v, want a socket with mode 0600", cr.AgentSocket(node), err, fi.Mode())
	}

	// It follows the API: a Node added (routes added) and deleted (routes
	// deleted), on its node as on the others.
	const name = "e2e-net-admin-only"
	t.Cleanup(func() { _, _ = provider.Kubectl(context.Background(), "delete", "node", name, "--ignore-not-found") })
	cidrs := podCIDRs(t, "10.222.220.0/24", "fd00:10:222:220::/64")
	applyNode(t, name, cidrs...)
	state = waitConverged(t)
	assertRoutes(t, state, "Node added under the confined agent", cidrs)
	kubectl(t, "delete", "node", name)
	state = waitConverged(t)
	if c := state[node].holdsAnyOf(cidrs); c != "" {
		t.Errorf("the confined agent of %s kept %s of a deleted Node: %s", node, c, state[node])
	}

	// Its drift repair works: the watchers run with NET_ADMIN alone
	// (they once needed CAP_SYS_ADMIN, and repairs waited for the
	// periodic resync).
	obs, ok := provider.(agentObserver)
	if !ok {
		t.Fatalf("provider %T cannot read the agent's log and metrics: the watcher check cannot run", provider)
	}
	checkWatcherRepair(t, obs, node)
	waitConverged(t)

	if got, err := provider.AgentID(ctx, node); err != nil || got != id {
		t.Errorf("the confined agent of %s did not stay up: %v %s, was %s", node, err, got, id)
	}
	if !t.Failed() {
		t.Logf("agent of %s with NET_ADMIN only: gateway addresses %v set, flows taken over (round %v -> %v), a Node added and deleted followed, a deleted route and a gateway flap repaired through the watchers", node, addrs, before[node].Rounds, state[node].Rounds)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return fmt.Sprint(l)
}

// agentStatuser reads the capability sets of the agent running on a node,
// as /proc/<pid>/status has them.
type agentStatuser interface {
	AgentStatus(node string) (map[string]string, error)
}

// TestDeployedAgentNeedsOnlyNetAdmin checks, where the agents run as the
// DaemonSet deploys them (kind), that the agent process of a worker holds
// NET_ADMIN alone (effective, permitted and bounding sets; nothing
// inheritable or ambient; no_new_privs) and that its drift repair works
// with that: a route deleted by hand and a gateway interface flap repaired
// through its watchers, no watcher error logged (checkWatcherRepair).
// Providers that start agents with chosen capabilities test the same in
// TestAgentNeedsOnlyNetAdmin.
func TestDeployedAgentNeedsOnlyNetAdmin(t *testing.T) {
	if _, ok := provider.(capsRestarter); ok {
		t.Skipf("provider %T starts its agents itself: TestAgentNeedsOnlyNetAdmin confines one", provider)
	}
	st, ok1 := provider.(agentStatuser)
	obs, ok2 := provider.(agentObserver)
	if !ok1 || !ok2 {
		t.Skipf("provider %T cannot read the agent's process status, log and metrics", provider)
	}
	waitConverged(t)
	node := provider.Nodes()[len(provider.Nodes())/2]
	status, err := st.AgentStatus(node)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": "0000000000001000", "CapEff": "0000000000001000",
		"CapBnd": "0000000000001000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("agent on %s: %s %s, want %s (NET_ADMIN alone, as deploy/ grants)", node, k, status[k], v)
		}
	}
	t.Logf("agent on %s: CapEff %s CapBnd %s NoNewPrivs %s", node, status["CapEff"], status["CapBnd"], status["NoNewPrivs"])
	checkWatcherRepair(t, obs, node)
	waitConverged(t)
}
