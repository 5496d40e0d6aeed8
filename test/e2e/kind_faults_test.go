//go:build e2e

package e2e

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"
)

// nodeFaulter is what a cluster of real kubelets can have done to it (the
// kind provider); the local cluster has no pods, so these cases skip there.
type nodeFaulter interface {
	// DeleteAgentPod deletes node's agent pod and returns once the
	// DaemonSet's new pod there is Ready.
	DeleteAgentPod(ctx context.Context, node string) error
	// RollDaemonSet changes the pod template and waits for the rollout.
	RollDaemonSet(ctx context.Context) error
	// KillVswitchd SIGKILLs ovs-vswitchd on node and returns once its
	// container has been restarted.
	KillVswitchd(ctx context.Context, node string) error
	// RestartNode restarts node as a reboot would and returns when its
	// kubelet runs again.
	RestartNode(ctx context.Context, node string) (kubeletBack time.Time, err error)
}

// nodeRestartConvergeBound is how long after its kubelet is back a
// restarted node may take to hold every flow and route again.
const nodeRestartConvergeBound = 30 * time.Second

// maxProbeOutage bounds the ARP answers lost to a fault that restarts OVS:
// a generous correctness bound (the outage is OVS's restart; the figures
// are logged), which still fails a repair that waited for a periodic
// resync or never came.
const maxProbeOutage = 10 * time.Second

// TestFaultsUnderARPProbes: while one worker ARPs for every remote IPv4
// gateway 20 times a second, its agent pod is deleted (the DaemonSet makes
// a new one), the DaemonSet is rolled, its ovs-vswitchd is killed, and the
// other worker's node container is restarted. After each, every node holds
// exactly what the Nodes want, the probes are answered again, and the
// probes lost and the time to converge are logged.
//
// The agent restarting alone loses no probe (TestAgentRestartConvergesWithoutGap
// fails on any loss). Here OVS restarts too with the pod, or is killed; with
// the userspace datapath of deploy/overlays/netdev that kind needs, packets
// are forwarded by ovs-vswitchd itself: antrea-gw0 (a persistent tap) and
// the routes through it stay, but nothing answers on it until the new
// ovs-vswitchd runs and the agent has put its flows back. Those probes are
// counted and logged (at most maxProbeOutage of them may be lost); the node
// restart (of another node) must lose none.
func TestFaultsUnderARPProbes(t *testing.T) {
	f, ok := provider.(nodeFaulter)
	if !ok {
		t.Skipf("provider %T runs no pods: no pod, rollout, container or node faults", provider)
	}
	ie := provider.(interruptibleExecer)
	nodes := provider.Nodes()
	if len(nodes) < 3 {
		t.Skipf("needs 3 nodes, the cluster has %v", nodes)
	}
	prober, other := nodes[1], nodes[2]
	ctx := context.Background()
	for _, fault := range []struct {
		name string
		// lossless: no probe may be lost.
		lossless bool
		do       func(t *testing.T) (convergeFrom time.Time)
	}{
		{name: "agent pod deleted", do: func(t *testing.T) time.Time {
			if err := f.DeleteAgentPod(ctx, prober); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		}},
		{name: "rolling update", do: func(t *testing.T) time.Time {
			if err := f.RollDaemonSet(ctx); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		}},
		{name: "ovs-vswitchd killed", do: func(t *testing.T) time.Time {
			if err := f.KillVswitchd(ctx, prober); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		}},
		{name: "other node restarted", lossless: true, do: func(t *testing.T) time.Time {
			back, err := f.RestartNode(ctx, other)
			if err != nil {
				t.Fatal(err)
			}
			return back
		}},
	} {
		t.Run(strings.ReplaceAll(fault.name, " ", "-"), func(t *testing.T) {
			before := waitConverged(t)
			var gateways []string
			for _, gw := range before[prober].Responders {
				if !strings.Contains(gw, ":") {
					gateways = append(gateways, gw)
				}
			}
			if len(gateways) == 0 {
				t.Skipf("%s has no remote IPv4 gateway to ARP for", prober)
			}
			probes := startFaultProbes(t, ie, prober, gateways)
			t.Cleanup(func() { probes.stop() })
			begin := time.Now()
			from := fault.do(t)
			bound := convergeTimeout
			if fault.name == "other node restarted" {
				bound = nodeRestartConvergeBound
			}
			waitConvergedWithin(t, bound-time.Since(from))
			converged := time.Now()
			// The probes must be answered again on what the fault
			// left: give them a second.
			time.Sleep(time.Second)
			totals := probes.stop()
			t.Logf("%s: done after %s, converged %s after that (%s after the fault began)", fault.name,
				from.Sub(begin).Round(time.Millisecond), converged.Sub(from).Round(time.Millisecond), converged.Sub(begin).Round(time.Millisecond))
			gws := make([]string, 0, len(totals))
			for gw := range totals {
				gws = append(gws, gw)
			}
			sort.Strings(gws)
			for _, gw := range gws {
				total := totals[gw]
				t.Logf("%s: ARP probes from %s for %s: %s", fault.name, prober, gw, total)
				if !total.LastAnswered.After(converged) {
					t.Errorf("%s: ARP for %s from %s not answered since the cluster converged (last answer %s): %v", fault.name, gw, prober, total.LastAnswered.Format(time.RFC3339Nano), total.Errors)
				}
				if fault.lossless && total.Lost > 0 {
					t.Errorf("%s: %d of %d ARP probes for %s from %s lost", fault.name, total.Lost, total.Sent, gw, prober)
				}
				if max := int(maxProbeOutage.Seconds() * probesPerSec); total.Lost > max {
					t.Errorf("%s: %d of %d ARP probes for %s from %s lost, more than %v of them (%d)", fault.name, total.Lost, total.Sent, gw, prober, maxProbeOutage, max)
				}
			}
		})
	}
}
