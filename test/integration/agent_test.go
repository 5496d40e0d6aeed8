//go:build linux

// Package integration runs the agent's data path for real: OVSDB set-up,
// OpenFlow and netlink clients in a throwaway network namespace with its own
// OVS (userspace datapath), driven by the controller over a fake API server.
package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/test/framework/nodesim"
)

// routesOf lists every route of the node (both families) as "dst via gw".
func routesOf(n *nodesim.Host) (string, error) {
	routes, err := n.Handle.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, r := range routes {
		if r.Dst != nil && r.Gw != nil {
			fmt.Fprintf(&b, "%s via %s\n", r.Dst, r.Gw)
		}
	}
	return b.String(), nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func seedTable20(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../pkg/ovs/openflow/testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	return lines(string(b))
}

// must fails the test on a command's error: must(t)(inst.Exec(...)).
func must(t *testing.T) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return out
	}
}

// assertSeedTable20 fails the test unless the host's table 20 is
// pkg/ovs/openflow/testdata/seed-table20.txt, byte for byte: worker1's table
// 20 on the three-Node example cluster.
func assertSeedTable20(t *testing.T, n *nodesim.Host) {
	t.Helper()
	got := strings.Join(lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats"))), "\n")
	if want := strings.Join(seedTable20(t), "\n"); got != want {
		t.Fatalf("table 20:\n%s\nwant the seed's:\n%s", got, want)
	}
}

func TestAgentProgramsSeedClusterOnWorker1(t *testing.T) {
	n := nodesim.NewHost(t)
	client := fake.NewSimpleClientset(nodesim.ClusterNodes()...)
	n.StartAgent(t, client, time.Minute)

	// Table 20 is worker1's on the example cluster, byte for byte.
	assertSeedTable20(t, n)

	// One onlink route per remote Node, tagged with our protocol.
	routes := lines(must(t)(n.OVS.Exec("ip", "route", "show", "dev", nodesim.GatewayInterface)))
	want := []string{
		"10.222.0.0/24 via 10.222.0.1 proto 94 onlink",
		"10.222.1.0/24 proto kernel scope link src 10.222.1.1",
		"10.222.2.0/24 via 10.222.2.1 proto 94 onlink",
	}
	if strings.Join(routes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ip route show dev %s:\n%s\nwant:\n%s", nodesim.GatewayInterface, strings.Join(routes, "\n"), strings.Join(want, "\n"))
	}

	// The kernel's ARP for each remote gateway, sent into antrea-gw0,
	// is answered by OVS with the virtual MAC. A ping to a remote pod IP
	// makes the kernel resolve the route's gateway; the ping itself has
	// nobody to answer it.
	for _, gw := range []string{"10.222.0.1", "10.222.2.1"} {
		remotePod := strings.TrimSuffix(gw, "1") + "5"
		_, _ = n.OVS.Exec("ping", "-c", "1", "-W", "1", remotePod)
		neigh := must(t)(n.OVS.Exec("ip", "neigh", "show", gw, "dev", nodesim.GatewayInterface))
		if !strings.Contains(neigh, "lladdr aa:bb:cc:dd:ee:ff") {
			t.Fatalf("ARP for %s not answered with the virtual MAC: ip neigh shows %q", gw, neigh)
		}
		t.Logf("ip neigh: %s", strings.TrimSpace(neigh))
	}
}

// TestAgentRestartHasNoGap restarts the agent of a dual-stack worker1 while
// a sampler dumps the flows and the routes; master is deleted while the
// agent is down. No sample may lack worker2's ARP or NDP responder or either
// of its routes, and afterwards master's flows (old round) and routes are
// gone.
func TestAgentRestartHasNoGap(t *testing.T) {
	n := nodesim.NewHost(t)
	client := fake.NewSimpleClientset(nodesim.DualStackClusterNodes()...)
	first := n.StartAgent(t, client, time.Minute)

	type sample struct{ flows, routes string }
	stop := make(chan struct{})
	samples := make(chan sample, 10000)
	go func() {
		defer close(samples)
		for {
			select {
			case <-stop:
				return
			default:
			}
			f, err1 := n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats")
			// Routes through the netlink handle: no process to
			// start, so more samples.
			r, err2 := routesOf(n)
			if err1 == nil && err2 == nil {
				samples <- sample{f, r}
			}
		}
	}()
	<-samples // the sampler runs before the restart begins

	first.Stop()
	if err := client.CoreV1().Nodes().Delete(context.Background(), "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.StartAgent(t, client, time.Minute)
	close(stop)

	count := 0
	for s := range samples {
		count++
		for _, want := range []string{"arp_tpa=10.222.2.1,", "nd_target=fd00:10:222:2::1 ", "icmp_type=136 actions=load:0xaabbccddeeff->NXM_NX_ND_TLL[],IN_PORT"} {
			if !strings.Contains(s.flows, want) {
				t.Fatalf("sample %d lacks %q:\n%s", count, want, s.flows)
			}
		}
		for _, want := range []string{"10.222.2.0/24 via 10.222.2.1", "fd00:10:222:2::/64 via fd00:10:222:2::1"} {
			if !strings.Contains(s.routes, want) {
				t.Fatalf("sample %d lacks route %q:\n%s", count, want, s.routes)
			}
		}
	}
	t.Logf("%d samples during the restart; none lacked worker2's flows or routes", count)

	flows := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats"))
	for _, l := range lines(flows) {
		if !strings.HasPrefix(l, "cookie=0x2") {
			t.Errorf("flow not of round 2 after the restart: %s", l)
		}
	}
	if strings.Contains(flows, "10.222.0.1") || strings.Contains(flows, "fd00:10:222::1 ") {
		t.Errorf("deleted master's flows survived the restart:\n%s", flows)
	}
	if routes := must(t)(n.OVS.Exec("ip", "route")); strings.Contains(routes, "10.222.0.0/24") {
		t.Errorf("deleted master's route survived the restart:\n%s", routes)
	}
	if routes := must(t)(n.OVS.Exec("ip", "-6", "route")); strings.Contains(routes, "fd00:10:222::/64") {
		t.Errorf("deleted master's IPv6 route survived the restart:\n%s", routes)
	}
}

func ndpTables(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../pkg/ovs/openflow/testdata/ndp-tables.txt")
	if err != nil {
		t.Fatal(err)
	}
	return lines(string(b))
}

// resolveGateways makes the kernel resolve each remote gateway (a ping to a
// pod IP behind it, which nobody answers, makes it ARP or solicit the
// route's gateway) and checks that OVS answered with the virtual MAC. It
// returns the neighbour lines.
func resolveGateways(t *testing.T, n *nodesim.Host, gateways ...string) []string {
	t.Helper()
	var neighs []string
	for _, gw := range gateways {
		family := "-4"
		if strings.Contains(gw, ":") {
			family = "-6"
		}
		remotePod := strings.TrimSuffix(gw, "1") + "5"
		_, _ = n.OVS.Exec("ping", family, "-c", "1", "-W", "1", remotePod)
		neigh := strings.TrimSpace(must(t)(n.OVS.Exec("ip", family, "neigh", "show", gw, "dev", nodesim.GatewayInterface)))
		if !strings.Contains(neigh, "lladdr aa:bb:cc:dd:ee:ff") || !strings.Contains(neigh, "REACHABLE") {
			t.Fatalf("neighbour discovery for %s not answered with the virtual MAC: ip %s neigh shows %q", gw, family, neigh)
		}
		t.Logf("ip %s neigh: %s", family, neigh)
		neighs = append(neighs, neigh)
	}
	return neighs
}

// TestAgentProgramsDualStackCluster: with an IPv6 pod CIDR on every Node,
// table 20 is still the IPv4 one byte for byte, table 21 answers the kernel's
// Neighbor Solicitation for each remote IPv6 gateway (with table 22's
// help), and both route families are in place.
func TestAgentProgramsDualStackCluster(t *testing.T) {
	n := nodesim.NewHost(t)
	client := fake.NewSimpleClientset(nodesim.DualStackClusterNodes()...)
	n.StartAgent(t, client, time.Minute)

	assertSeedTable20(t, n)
	got := lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=21", "--no-stats")))
	got = append(got, lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=22", "--no-stats")))...)
	if strings.Join(got, "\n") != strings.Join(ndpTables(t), "\n") {
		t.Fatalf("tables 21 and 22:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(ndpTables(t), "\n"))
	}
	for _, l := range lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats"))) {
		t.Logf("flow: %s", l)
	}

	routes := lines(must(t)(n.OVS.Exec("ip", "-6", "route", "show", "dev", nodesim.GatewayInterface)))
	want := []string{
		"fd00:10:222::/64 via fd00:10:222::1 proto 94 metric 1024 onlink pref medium",
		"fd00:10:222:1::/64 proto kernel metric 256 pref medium",
		"fd00:10:222:2::/64 via fd00:10:222:2::1 proto 94 metric 1024 onlink pref medium",
		"fe80::/64 proto kernel metric 256 pref medium",
	}
	if strings.Join(routes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ip -6 route show dev %s:\n%s\nwant:\n%s", nodesim.GatewayInterface, strings.Join(routes, "\n"), strings.Join(want, "\n"))
	}
	routes4 := lines(must(t)(n.OVS.Exec("ip", "route", "show", "dev", nodesim.GatewayInterface)))
	if len(routes4) != 3 {
		t.Fatalf("ip route show dev %s:\n%s", nodesim.GatewayInterface, strings.Join(routes4, "\n"))
	}
	// The gateway interface has this node's IPv6 gateway, usable at once
	// (no duplicate address detection).
	addrs := must(t)(n.OVS.Exec("ip", "-6", "addr", "show", "dev", nodesim.GatewayInterface, "scope", "global"))
	if !strings.Contains(addrs, "inet6 fd00:10:222:1::1/64 scope global nodad") || strings.Contains(addrs, "tentative") {
		t.Fatalf("IPv6 gateway address of %s:\n%s", nodesim.GatewayInterface, addrs)
	}

	resolveGateways(t, n, "10.222.0.1", "10.222.2.1", "fd00:10:222::1", "fd00:10:222:2::1")

	// The advertisement went through both NDP tables once per gateway.
	flows := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=22"))
	if !strings.Contains(flows, "n_packets=2,") {
		t.Errorf("table 22 did not see two advertisements:\n%s", flows)
	}
}

// TestAgentProgramsSingleStackIPv6Cluster: no IPv4 at all. No ARP
// responder, one NDP responder per remote Node, answered as above.
func TestAgentProgramsSingleStackIPv6Cluster(t *testing.T) {
	n := nodesim.NewHost(t)
	client := fake.NewSimpleClientset(
		testsupport.Node("master", "fd00:10:222::/64"), testsupport.Node("worker1", "fd00:10:222:1::/64"), testsupport.Node("worker2", "fd00:10:222:2::/64"))
	n.StartAgent(t, client, time.Minute)
	table20 := lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats")))
	if strings.Join(table20, "\n") != strings.Join(seedTable20(t)[2:], "\n") {
		t.Fatalf("table 20 of an IPv6 cluster:\n%s", strings.Join(table20, "\n"))
	}
	if routes := must(t)(n.OVS.Exec("ip", "-4", "route", "show", "proto", "94")); routes != "" {
		t.Fatalf("IPv4 routes in an IPv6 cluster: %s", routes)
	}
	resolveGateways(t, n, "fd00:10:222::1", "fd00:10:222:2::1")
}
