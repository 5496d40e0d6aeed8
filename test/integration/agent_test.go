//go:build linux

// Package integration runs the agent's data path for real: OVSDB set-up,
// OpenFlow and netlink clients in a throwaway network namespace with its own
// OVS (userspace datapath), driven by the controller over a fake API server.
package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
	"github.com/noderoute/noderoute/pkg/route"
)

const (
	bridgeName = "br-int"
	gwIface    = "antrea-gw0"
)

var virtualMAC, _ = net.ParseMAC("aa:bb:cc:dd:ee:ff")

func mkNode(name string, cidrs ...string) runtime.Object {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
}

func seedNodes() []runtime.Object {
	return []runtime.Object{mkNode("master", "10.222.0.0/24"), mkNode("worker1", "10.222.1.0/24"), mkNode("worker2", "10.222.2.0/24")}
}

// dualStackNodes are the seed's Nodes with an IPv6 pod CIDR each, IPv4
// first as Kubernetes lists them in a dual-stack cluster whose primary
// family is IPv4.
func dualStackNodes() []runtime.Object {
	return []runtime.Object{
		mkNode("master", "10.222.0.0/24", "fd00:10:222::/64"),
		mkNode("worker1", "10.222.1.0/24", "fd00:10:222:1::/64"),
		mkNode("worker2", "10.222.2.0/24", "fd00:10:222:2::/64"),
	}
}

// node is one simulated node: an OVS instance in its own netns, and a
// netlink handle into that netns.
type node struct {
	ovs    *ovstest.Instance
	handle *netlink.Handle
}

func newNode(t *testing.T) *node {
	t.Helper()
	inst := ovstest.Start(t)
	ns, err := netns.GetFromPath(inst.NetNSPath())
	if err != nil {
		t.Fatalf("open netns %s: %v", inst.NetNS, err)
	}
	t.Cleanup(func() { ns.Close() })
	handle, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", inst.NetNS, err)
	}
	t.Cleanup(handle.Close)
	return &node{ovs: inst, handle: handle}
}

// agent is one incarnation of the agent on a node, as agent.Run wires it.
type agent struct {
	flows  *openflow.OFClient
	ctrl   *noderoute.Controller
	cancel context.CancelFunc
	done   chan struct{}
}

// startAgent does what noderoute-agent does at start for worker1, with the
// node's netlink handle instead of the process's namespace: worker1's
// gateway addresses are computed from its Node as agent.Run does.
func startAgent(t *testing.T, n *node, client kubernetes.Interface) *agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ovsdb, err := ovsconfig.New(ctx, n.ovs.DBSock())
	if err != nil {
		t.Fatal(err)
	}
	defer ovsdb.Close()
	if err := ovsdb.EnsureBridge(ctx, ovsconfig.BridgeConfig{Name: bridgeName, DatapathType: ovsconfig.DatapathNetdev, GatewayPort: gwIface}); err != nil {
		t.Fatal(err)
	}
	round, err := ovsdb.NextFlowRound(ctx, bridgeName)
	if err != nil {
		t.Fatal(err)
	}
	flows := openflow.NewOFClient(bridgeName, n.ovs.MgmtSock(bridgeName), virtualMAC)
	if err := flows.Initialize(round); err != nil {
		t.Fatal(err)
	}
	self, err := client.CoreV1().Nodes().Get(ctx, "worker1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := route.ConfigureGateway(n.handle, gwIface, noderoute.GatewayAddresses(self), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := noderoute.NewController("worker1", factory.Core().V1().Nodes(), flows, route.NewClient(n.handle, gwIface), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	a := &agent{flows: flows, ctrl: ctrl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		if err := ctrl.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(a.stop)
	select {
	case <-ctrl.FullSyncDone():
	case <-time.After(30 * time.Second):
		t.Fatal("first full sync not done after 30s")
	}
	return a
}

// routesOf lists every route of the node (both families) as "dst via gw".
func routesOf(n *node) (string, error) {
	routes, err := n.handle.RouteList(nil, netlink.FAMILY_ALL)
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

func (a *agent) stop() {
	a.cancel()
	<-a.done
	a.flows.Disconnect()
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

func TestAgentProgramsSeedClusterOnWorker1(t *testing.T) {
	n := newNode(t)
	client := fake.NewSimpleClientset(seedNodes()...)
	startAgent(t, n, client)

	// Table 20 is the seed's, byte for byte.
	got := lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=20", "--no-stats")))
	if strings.Join(got, "\n") != strings.Join(seedTable20(t), "\n") {
		t.Fatalf("table 20:\n%s\nwant the seed's:\n%s", strings.Join(got, "\n"), strings.Join(seedTable20(t), "\n"))
	}

	// The routes are the seed's, tagged with our protocol.
	routes := lines(must(t)(n.ovs.Exec("ip", "route", "show", "dev", gwIface)))
	want := []string{
		"10.222.0.0/24 via 10.222.0.1 proto 94 onlink",
		"10.222.1.0/24 proto kernel scope link src 10.222.1.1",
		"10.222.2.0/24 via 10.222.2.1 proto 94 onlink",
	}
	if strings.Join(routes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ip route show dev %s:\n%s\nwant:\n%s", gwIface, strings.Join(routes, "\n"), strings.Join(want, "\n"))
	}

	// The kernel's ARP for each remote gateway, sent into antrea-gw0,
	// is answered by OVS with the virtual MAC. A ping to a remote pod IP
	// makes the kernel resolve the route's gateway; the ping itself has
	// nobody to answer it.
	for _, gw := range []string{"10.222.0.1", "10.222.2.1"} {
		remotePod := strings.TrimSuffix(gw, "1") + "5"
		_, _ = n.ovs.Exec("ping", "-c", "1", "-W", "1", remotePod)
		neigh := must(t)(n.ovs.Exec("ip", "neigh", "show", gw, "dev", gwIface))
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
	n := newNode(t)
	client := fake.NewSimpleClientset(dualStackNodes()...)
	first := startAgent(t, n, client)

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
			f, err1 := n.ovs.Ofctl("dump-flows", bridgeName, "--no-stats")
			// Routes through the netlink handle: no process to
			// start, so more samples.
			r, err2 := routesOf(n)
			if err1 == nil && err2 == nil {
				samples <- sample{f, r}
			}
		}
	}()
	<-samples // the sampler runs before the restart begins

	first.stop()
	if err := client.CoreV1().Nodes().Delete(context.Background(), "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, n, client)
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

	flows := must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "--no-stats"))
	for _, l := range lines(flows) {
		if !strings.HasPrefix(l, "cookie=0x2") {
			t.Errorf("flow not of round 2 after the restart: %s", l)
		}
	}
	if strings.Contains(flows, "10.222.0.1") || strings.Contains(flows, "fd00:10:222::1 ") {
		t.Errorf("deleted master's flows survived the restart:\n%s", flows)
	}
	if routes := must(t)(n.ovs.Exec("ip", "route")); strings.Contains(routes, "10.222.0.0/24") {
		t.Errorf("deleted master's route survived the restart:\n%s", routes)
	}
	if routes := must(t)(n.ovs.Exec("ip", "-6", "route")); strings.Contains(routes, "fd00:10:222::/64") {
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
func resolveGateways(t *testing.T, n *node, gateways ...string) []string {
	t.Helper()
	var neighs []string
	for _, gw := range gateways {
		family := "-4"
		if strings.Contains(gw, ":") {
			family = "-6"
		}
		remotePod := strings.TrimSuffix(gw, "1") + "5"
		_, _ = n.ovs.Exec("ping", family, "-c", "1", "-W", "1", remotePod)
		neigh := strings.TrimSpace(must(t)(n.ovs.Exec("ip", family, "neigh", "show", gw, "dev", gwIface)))
		if !strings.Contains(neigh, "lladdr aa:bb:cc:dd:ee:ff") || !strings.Contains(neigh, "REACHABLE") {
			t.Fatalf("neighbour discovery for %s not answered with the virtual MAC: ip %s neigh shows %q", gw, family, neigh)
		}
		t.Logf("ip %s neigh: %s", family, neigh)
		neighs = append(neighs, neigh)
	}
	return neighs
}

// TestAgentProgramsDualStackCluster: with an IPv6 pod CIDR on every Node,
// table 20 is still the seed's byte for byte, table 21 answers the kernel's
// Neighbor Solicitation for each remote IPv6 gateway (with table 22's
// help), and both route families are in place.
func TestAgentProgramsDualStackCluster(t *testing.T) {
	n := newNode(t)
	client := fake.NewSimpleClientset(dualStackNodes()...)
	startAgent(t, n, client)

	got := lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=20", "--no-stats")))
	if strings.Join(got, "\n") != strings.Join(seedTable20(t), "\n") {
		t.Fatalf("table 20:\n%s\nwant the seed's:\n%s", strings.Join(got, "\n"), strings.Join(seedTable20(t), "\n"))
	}
	got = lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=21", "--no-stats")))
	got = append(got, lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=22", "--no-stats")))...)
	if strings.Join(got, "\n") != strings.Join(ndpTables(t), "\n") {
		t.Fatalf("tables 21 and 22:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(ndpTables(t), "\n"))
	}
	for _, l := range lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "--no-stats"))) {
		t.Logf("flow: %s", l)
	}

	routes := lines(must(t)(n.ovs.Exec("ip", "-6", "route", "show", "dev", gwIface)))
	want := []string{
		"fd00:10:222::/64 via fd00:10:222::1 proto 94 metric 1024 onlink pref medium",
		"fd00:10:222:1::/64 proto kernel metric 256 pref medium",
		"fd00:10:222:2::/64 via fd00:10:222:2::1 proto 94 metric 1024 onlink pref medium",
		"fe80::/64 proto kernel metric 256 pref medium",
	}
	if strings.Join(routes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ip -6 route show dev %s:\n%s\nwant:\n%s", gwIface, strings.Join(routes, "\n"), strings.Join(want, "\n"))
	}
	routes4 := lines(must(t)(n.ovs.Exec("ip", "route", "show", "dev", gwIface)))
	if len(routes4) != 3 {
		t.Fatalf("ip route show dev %s:\n%s", gwIface, strings.Join(routes4, "\n"))
	}
	// The gateway interface has this node's IPv6 gateway, usable at once
	// (no duplicate address detection).
	addrs := must(t)(n.ovs.Exec("ip", "-6", "addr", "show", "dev", gwIface, "scope", "global"))
	if !strings.Contains(addrs, "inet6 fd00:10:222:1::1/64 scope global nodad") || strings.Contains(addrs, "tentative") {
		t.Fatalf("IPv6 gateway address of %s:\n%s", gwIface, addrs)
	}

	resolveGateways(t, n, "10.222.0.1", "10.222.2.1", "fd00:10:222::1", "fd00:10:222:2::1")

	// The advertisement went through both NDP tables once per gateway.
	flows := must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=22"))
	if !strings.Contains(flows, "n_packets=2,") {
		t.Errorf("table 22 did not see two advertisements:\n%s", flows)
	}
}

// TestAgentProgramsSingleStackIPv6Cluster: no IPv4 at all. No ARP
// responder, one NDP responder per remote Node, answered as above.
func TestAgentProgramsSingleStackIPv6Cluster(t *testing.T) {
	n := newNode(t)
	client := fake.NewSimpleClientset(
		mkNode("master", "fd00:10:222::/64"), mkNode("worker1", "fd00:10:222:1::/64"), mkNode("worker2", "fd00:10:222:2::/64"))
	startAgent(t, n, client)
	table20 := lines(must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "table=20", "--no-stats")))
	if strings.Join(table20, "\n") != strings.Join(seedTable20(t)[2:], "\n") {
		t.Fatalf("table 20 of an IPv6 cluster:\n%s", strings.Join(table20, "\n"))
	}
	if routes := must(t)(n.ovs.Exec("ip", "-4", "route", "show", "proto", "94")); routes != "" {
		t.Fatalf("IPv4 routes in an IPv6 cluster: %s", routes)
	}
	resolveGateways(t, n, "fd00:10:222::1", "fd00:10:222:2::1")
}
