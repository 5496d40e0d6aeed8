//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// daemonSetCluster is a cluster where noderoute runs as its DaemonSet
// (kind): the uninstall of docs/install.md can be run there as written.
type daemonSetCluster interface {
	// RenderedCleanup is the clean-up DaemonSet (deploy/cleanup) as this
	// cluster must run it (its datapath, its image).
	RenderedCleanup(ctx context.Context) (string, error)
	// InstallAgent applies the agent's manifests again and waits for the
	// rollout.
	InstallAgent(ctx context.Context) error
}

// TestUninstallWithCleanupDaemonSet runs docs/install.md's uninstall on a
// cluster of real kubelets: the agent DaemonSet deleted (the data plane
// stays), the clean-up DaemonSet applied and rolled out (Ready: that node is
// clean), after which no node has a route of protocol 94, br-int or
// antrea-gw0, and every other route is as before; then the clean-up is
// deleted and the agent installed again, and the cluster converges. It runs
// last (this file sorts last): it takes the agents away.
func TestUninstallWithCleanupDaemonSet(t *testing.T) {
	dc, ok := provider.(daemonSetCluster)
	if !ok {
		t.Skipf("provider %T does not run the agent as a DaemonSet (TestCleanupLeavesNodeAsBeforeInstall runs the command there)", provider)
	}
	waitConverged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	before := map[string]string{}
	for _, node := range provider.Nodes() {
		before[node] = foreignRoutes(t, node)
	}
	t.Cleanup(func() {
		_, _ = provider.Kubectl(context.Background(), "-n", "kube-system", "delete", "ds", "noderoute-cleanup", "--ignore-not-found", "--wait")
		if err := dc.InstallAgent(context.Background()); err != nil {
			t.Errorf("install the agent again: %v", err)
		}
	})

	begin := time.Now()
	kubectl(t, "-n", "kube-system", "delete", "ds", "noderoute-agent", "--wait")
	kubectl(t, "-n", "kube-system", "wait", "--for=delete", "pod", "-l", "app=noderoute-agent", "--timeout=120s")
	// Stopping the agents removes nothing.
	for _, node := range provider.Nodes() {
		if out, err := provider.Exec(ctx, node, "ip", "route", "show", "proto", "94"); err != nil || strings.TrimSpace(out) == "" {
			t.Errorf("%s: after the agent DaemonSet was deleted, its routes are gone already (%v): %q", node, err, out)
		}
	}
	manifest, err := dc.RenderedCleanup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kubectlStdin(t, manifest, "apply", "-f", "-")
	kubectl(t, "-n", "kube-system", "rollout", "status", "ds/noderoute-cleanup", "--timeout=3m")
	t.Logf("agent DaemonSet deleted, clean-up DaemonSet rolled out: %s", time.Since(begin).Round(time.Millisecond))
	pods := strings.Fields(kubectl(t, "-n", "kube-system", "get", "pods", "-l", "app=noderoute-cleanup", "-o", "name"))
	for _, pod := range pods {
		log := kubectl(t, "-n", "kube-system", "logs", pod, "-c", "cleanup")
		t.Logf("%s, cleanup's log:\n%s", pod, log)
		if !strings.Contains(log, "removed bridge br-int") {
			t.Errorf("%s: cleanup did not remove br-int:\n%s", pod, log)
		}
	}
	for _, node := range provider.Nodes() {
		for _, fam := range []string{"-4", "-6"} {
			if out, err := provider.Exec(ctx, node, "ip", fam, "route", "show", "proto", "94"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("%s: routes of protocol 94 left after clean-up (%v): %q", node, err, out)
			}
		}
		for _, link := range []string{"br-int", "antrea-gw0"} {
			if out, err := provider.Exec(ctx, node, "ip", "link", "show", link); err == nil {
				t.Errorf("%s: link %s left after clean-up: %s", node, link, out)
			}
		}
		if got := foreignRoutes(t, node); got != before[node] {
			t.Errorf("%s: other routes changed by the clean-up:\nbefore %q\nafter  %q", node, before[node], got)
		}
	}
	kubectl(t, "-n", "kube-system", "delete", "ds", "noderoute-cleanup", "--wait")
	if err := dc.InstallAgent(ctx); err != nil {
		t.Fatalf("install the agent again: %v", err)
	}
	waitConverged(t)
	t.Logf("uninstalled, cleaned and installed again in %s", time.Since(begin).Round(time.Millisecond))
}

// foreignRoutes lists node's routes of both families that are not the
// agent's nor through its gateway interface.
func foreignRoutes(t *testing.T, node string) string {
	t.Helper()
	var keep []string
	for _, fam := range []string{"-4", "-6"} {
		out, err := provider.Exec(context.Background(), node, "ip", fam, "route", "show")
		if err != nil {
			t.Fatalf("%s: ip %s route show: %v: %s", node, fam, err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "proto 94") && !strings.Contains(l, "dev antrea-gw0") {
				keep = append(keep, l)
			}
		}
	}
	return strings.Join(keep, "\n")
}
