//go:build linux

package integration

import (
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/test/framework/nodesim"
)

// driftTimeout bounds the repairs generously: the test proves that they
// happen without the periodic resync (an hour here) or a restart; the
// times are logged.
const driftTimeout = 30 * time.Second

// TestAgentRepairsDrift changes worker1's data plane by hand while its
// agent runs: a route of ours deleted, one replaced by a foreign route, a
// responder flow and a base flow deleted; foreign flows and routes added.
// Ours come back (the route watcher, the flow check); the replaced route
// and the foreign ones are left alone.
func TestAgentRepairsDrift(t *testing.T) {
	n := nodesim.NewHost(t)
	n.StartAgent(t, fake.NewSimpleClientset(nodesim.ClusterNodes()...), time.Hour)
	assertSeedTable20(t, n)
	routes := func() string {
		out, _ := n.OVS.Exec("ip", "route", "show", "proto", "94")
		return strings.Join(lines(out), "\n")
	}
	wantRoutes := routes()
	if !strings.Contains(wantRoutes, "10.222.0.0/24 via 10.222.0.1") || !strings.Contains(wantRoutes, "10.222.2.0/24 via 10.222.2.1") {
		t.Fatalf("routes of ours before the changes: %q", wantRoutes)
	}
	wantTable20 := strings.Join(seedTable20(t), "\n")
	table20 := func() string {
		out, _ := n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats")
		return strings.Join(lines(out), "\n")
	}
	waitFor := func(what string, since time.Time, ok func() bool) {
		t.Helper()
		for !ok() {
			if time.Since(since) > driftTimeout {
				t.Fatalf("%s not repaired after %s:\nroutes:\n%s\ntable 20:\n%s", what, driftTimeout, routes(), table20())
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: repaired %s after the change by hand", what, ms(time.Since(since)))
	}

	// The gateway interface set down and up again: the kernel drops its
	// IPv4 routes without a route notification; the link watcher has
	// them put back when it is up.
	// The watchers subscribe in goroutines of their own right after the
	// first full sync; give them a moment (no hook tells when).
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	must(t)(n.OVS.Exec("ip", "link", "set", nodesim.GatewayInterface, "down"))
	must(t)(n.OVS.Exec("ip", "link", "set", nodesim.GatewayInterface, "up"))
	waitFor("routes dropped by a down-up flap of the gateway interface", start, func() bool { return routes() == wantRoutes })

	// A foreign route and a foreign flow, in our table, with cookie 0:
	// never touched.
	must(t)(n.OVS.Exec("ip", "route", "add", "10.99.0.0/24", "dev", nodesim.GatewayInterface))
	must(t)(n.OVS.Ofctl("add-flow", nodesim.Bridge, "table=20,priority=300,arp,arp_tpa=10.99.0.1,actions=drop"))

	start = time.Now()
	must(t)(n.OVS.Exec("ip", "route", "del", "10.222.2.0/24"))
	waitFor("route deleted with ip route del", start, func() bool { return routes() == wantRoutes })

	start = time.Now()
	must(t)(n.OVS.Ofctl("del-flows", nodesim.Bridge, "table=20,arp,arp_tpa=10.222.2.1"))
	must(t)(n.OVS.Ofctl("--strict", "del-flows", nodesim.Bridge, "table=20,priority=190,arp"))
	waitFor("responder and base flow deleted with ovs-ofctl del-flows", start, func() bool {
		out, _ := n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats")
		var ours []string
		for _, l := range lines(out) {
			if !strings.Contains(l, "10.99.0.1") {
				ours = append(ours, l)
			}
		}
		return strings.Join(ours, "\n") == wantTable20
	})

	// A route of ours replaced by hand by a foreign one (another
	// protocol): the agent sees it and leaves it alone.
	must(t)(n.OVS.Exec("ip", "route", "replace", "10.222.0.0/24", "dev", nodesim.GatewayInterface))
	time.Sleep(time.Second)
	if got := must(t)(n.OVS.Exec("ip", "route", "show", "10.222.0.0/24")); strings.Contains(got, "proto 94") || !strings.Contains(got, "dev antrea-gw0") {
		t.Errorf("route replaced by hand was changed by the agent: %q", got)
	}
	if got := must(t)(n.OVS.Exec("ip", "route", "show", "10.99.0.0/24")); !strings.Contains(got, "10.99.0.0/24 dev antrea-gw0") {
		t.Errorf("foreign route gone: %q", got)
	}
	if got := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20,arp,arp_tpa=10.99.0.1", "--no-stats")); !strings.Contains(got, "actions=drop") {
		t.Errorf("foreign flow gone: %q", got)
	}
}
