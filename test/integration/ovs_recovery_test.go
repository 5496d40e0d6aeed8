//go:build linux

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
	"github.com/noderoute/noderoute/test/framework/nodesim"
)

const (
	// recoveryTimeout is generous: these tests check that the agent
	// recovers by itself, not how fast; the times are logged.
	recoveryTimeout = 60 * time.Second
	// recoveryResync is the controller's periodic resync, as long as the
	// agent's default: routes through a re-created gateway interface
	// must come back through the bridge monitor's hook, long before it.
	recoveryResync = time.Minute
)

// TestAgentRecoversFromOVSDisruption runs worker1's agent, disrupts OVS
// under it, and waits until the bridge, the gateway interface with its
// address, table 20 and the routes are as before, without restarting the
// agent. It logs the time from the disruption, and from OVS being back
// where it was down, to table 20 complete and to the routes back.
func TestAgentRecoversFromOVSDisruption(t *testing.T) {
	for _, tc := range []struct {
		name string
		// disrupt breaks OVS and, where it killed daemons, starts
		// them again; it returns when OVS is back.
		disrupt func(t *testing.T, inst *ovstest.Instance)
		// newInterface: the disruption replaces the gateway's
		// kernel interface (new ifindex, no address, no routes).
		// A SIGKILLed vswitchd does not: OVS makes its userspace
		// datapath taps persistent, the next vswitchd takes the
		// same one over, and the routes only show "linkdown" in
		// between.
		newInterface bool
	}{
		{"del-br", func(t *testing.T, inst *ovstest.Instance) {
			must(t)(inst.Vsctl("del-br", nodesim.Bridge))
		}, true},
		{"del-port", func(t *testing.T, inst *ovstest.Instance) {
			must(t)(inst.Vsctl("del-port", nodesim.Bridge, nodesim.GatewayInterface))
		}, true},
		{"ovsdb-server killed, then del-br", func(t *testing.T, inst *ovstest.Instance) {
			// Same database: nothing vanishes, but the agent's OVSDB
			// connection must be back for the del-br to be undone.
			inst.KillOvsdb()
			inst.StartOvsdb()
			must(t)(inst.Vsctl("del-br", nodesim.Bridge))
		}, true},
		{"ovs-vswitchd killed", func(t *testing.T, inst *ovstest.Instance) {
			inst.KillVswitchd()
			inst.StartVswitchd()
		}, false},
		{"ovs-vswitchd and ovsdb-server killed, fresh database", func(t *testing.T, inst *ovstest.Instance) {
			inst.KillVswitchd()
			inst.KillOvsdb()
			inst.WipeDatabase()
			inst.StartOvsdb()
			inst.StartVswitchd()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nodesim.NewHost(t)
			a := n.StartAgent(t, fake.NewSimpleClientset(nodesim.ClusterNodes()...), recoveryResync)
			assertSeedTable20(t, n)
			wantRoutes := strings.Join([]string{
				"10.222.0.0/24 via 10.222.0.1 proto 94 onlink",
				"10.222.1.0/24 proto kernel scope link src 10.222.1.1",
				"10.222.2.0/24 via 10.222.2.1 proto 94 onlink",
			}, "\n")
			// The kernel route to the local pod CIDR comes with the
			// gateway address, so this also checks the address.
			routes := func() string {
				out, _ := n.OVS.Exec("ip", "route", "show", "dev", nodesim.GatewayInterface)
				return strings.Join(lines(out), "\n")
			}
			if got := routes(); got != wantRoutes {
				t.Fatalf("routes before the disruption:\n%s\nwant:\n%s", got, wantRoutes)
			}
			wantTable20 := strings.Join(seedTable20(t), "\n")
			table20 := func() string {
				out, _ := n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats")
				return strings.Join(lines(out), "\n")
			}

			gwIndex := func() int {
				link, err := n.Handle.LinkByName(nodesim.GatewayInterface)
				if err != nil {
					return 0
				}
				return link.Attrs().Index
			}
			indexBefore := gwIndex()

			start := time.Now()
			tc.disrupt(t, n.OVS)
			back := time.Now()
			var table20At, routesAt time.Time
			for table20At.IsZero() || routesAt.IsZero() {
				now := time.Now()
				if table20At.IsZero() && table20() == wantTable20 {
					table20At = now
				}
				if routesAt.IsZero() && routes() == wantRoutes {
					routesAt = now
				}
				if now.Sub(back) > recoveryTimeout {
					t.Fatalf("not recovered %s after OVS was back:\ntable 20:\n%s\nroutes:\n%s",
						recoveryTimeout, table20(), routes())
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%s: table 20 complete %s after the disruption began, %s after OVS was back; routes back %s after it began, %s after OVS was back (periodic resync %s)",
				tc.name, ms(table20At.Sub(start)), ms(table20At.Sub(back)), ms(routesAt.Sub(start)), ms(routesAt.Sub(back)), recoveryResync)
			if indexAfter := gwIndex(); (indexAfter != indexBefore) != tc.newInterface {
				t.Errorf("%s: ifindex before %d, after %d; want a new interface: %v", nodesim.GatewayInterface, indexBefore, indexAfter, tc.newInterface)
			}

			// Everything else is as the agent made it at start.
			if got := must(t)(n.OVS.Vsctl("get", "bridge", nodesim.Bridge, "protocols", "fail_mode", "datapath_type")); got != "[OpenFlow10, OpenFlow13]\nsecure\nnetdev" {
				t.Errorf("bridge columns: %q", got)
			}
			if got := must(t)(n.OVS.Vsctl("get", "interface", nodesim.GatewayInterface, "type")); got != "internal" {
				t.Errorf("type of %s: %q", nodesim.GatewayInterface, got)
			}
			wantRound := fmt.Sprintf(`"%d"`, a.Round)
			if got := must(t)(n.OVS.Vsctl("get", "bridge", nodesim.Bridge, "external_ids:"+ovsconfig.RoundExternalID)); got != wantRound {
				t.Errorf("flow round stored on the bridge: %s, want %s", got, wantRound)
			}
			// The data path works: the kernel's ARP for a remote
			// gateway is answered with the virtual MAC.
			resolveGateways(t, n, "10.222.2.1")
		})
	}
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
