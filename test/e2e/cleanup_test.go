//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCleanupLeavesNodeAsBeforeInstall runs `noderoute-agent cleanup` on the
// last node, as docs/install.md has it: refused while the agent runs, a dry
// run that lists and changes nothing, then, with the agent stopped, a
// cleanup after which the node is as before the agent started (no bridge in
// its OVS, no antrea-gw0 or br-int link, no route of protocol 94, every
// other route as it was), and a second run that finds nothing. The agent is
// started again at the end and the cluster converges.
//
// Local provider only: on kind the agent is the DaemonSet's container, and
// Exec runs in it, so there is nothing to stop it with here.
func TestCleanupLeavesNodeAsBeforeInstall(t *testing.T) {
	stopper, ok := provider.(agentStopper)
	if !ok {
		t.Skip("provider cannot stop an agent and leave it stopped (kind: the agent is the DaemonSet's container); test/deploy's Pod/Uninstall runs deploy/cleanup's container instead")
	}
	waitConverged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := provider.Nodes()
	node := nodes[len(nodes)-1]
	run := func(args ...string) (string, error) {
		cmd := append([]string{"noderoute-agent", "cleanup", "--ovs-rundir=" + stopper.OVSRunDir(node)}, args...)
		if caps, ok := provider.(capsRestarter); ok {
			cmd = append(cmd, "--api-socket="+caps.AgentSocket(node))
		}
		out, err := provider.Exec(ctx, node, cmd...)
		t.Logf("%s on %s: err %v\n%s", strings.Join(cmd, " "), node, err, out)
		return out, err
	}
	routes := func(fam string) []string {
		out, err := provider.Exec(ctx, node, "ip", fam, "route", "show")
		if err != nil {
			t.Fatalf("ip %s route show: %v\n%s", fam, err, out)
		}
		var keep []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			// ip prints some routes with a trailing space.
			if l = strings.TrimSpace(l); l != "" {
				keep = append(keep, l)
			}
		}
		return keep
	}
	// What the node had that is not the agent's: every route but ours and
	// those through the gateway interface (the kernel's, for its address).
	notOurs := func(rs []string) []string {
		return slices.DeleteFunc(slices.Clone(rs), func(r string) bool {
			return strings.Contains(r, "proto 94") || strings.Contains(r, "dev antrea-gw0")
		})
	}
	before4, before6 := notOurs(routes("-4")), notOurs(routes("-6"))

	if out, err := run(); err == nil || !strings.Contains(out, "noderoute-agent is running on this node") {
		t.Fatalf("cleanup while the agent runs: %v, want a refusal", err)
	}
	out, err := run("--dry-run")
	if err != nil || !strings.Contains(out, "would remove bridge br-int") {
		t.Fatalf("dry run: %v, want the bridge listed", err)
	}
	waitConverged(t) // nothing changed

	if err := stopper.StopAgent(ctx, node); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, the node gets its agent back.
	t.Cleanup(func() {
		if err := provider.RestartAgent(context.Background(), node, false); err != nil {
			t.Errorf("start the agent of %s again: %v", node, err)
			return
		}
		waitConverged(t)
	})
	if _, err := run(); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if br, err := provider.Exec(ctx, node, "ovs-vsctl", "list-br"); err != nil || strings.TrimSpace(br) != "" {
		t.Errorf("bridges after cleanup: %q (%v), want none", br, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		links, err := provider.Exec(ctx, node, "ip", "-br", "link")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^(br-int|antrea-gw0)[\s@]`).MatchString(links) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("br-int or antrea-gw0 still there 10s after cleanup:\n%s", links)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := routes("-4"); !slices.Equal(after, before4) {
		t.Errorf("IPv4 routes after cleanup:\n%s\nwant those the agent did not add:\n%s", strings.Join(after, "\n"), strings.Join(before4, "\n"))
	}
	if after := routes("-6"); !slices.Equal(after, before6) {
		t.Errorf("IPv6 routes after cleanup:\n%s\nwant those the agent did not add:\n%s", strings.Join(after, "\n"), strings.Join(before6, "\n"))
	}
	if out, err := run(); err != nil || !strings.Contains(out, "nothing to remove") {
		t.Errorf("second cleanup: %v, want \"nothing to remove\"", err)
	}
}
