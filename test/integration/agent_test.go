//go:build linux

// Package integration runs the agent's data path for real: OVSDB set-up,
// OpenFlow and netlink clients in a throwaway network namespace with its own
// OVS (userspace datapath), driven by the controller over a fake API server.
package integration

import (
	"context"
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

func seedNodes() []runtime.Object {
	mk := func(name, cidr string) runtime.Object {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: []string{cidr}}}
	}
	return []runtime.Object{mk("master", "10.222.0.0/24"), mk("worker1", "10.222.1.0/24"), mk("worker2", "10.222.2.0/24")}
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
// node's netlink handle instead of the process's namespace.
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
	_, gwNet, _ := net.ParseCIDR("10.222.1.1/24")
	gwNet.IP = net.ParseIP("10.222.1.1").To4()
	if err := route.ConfigureGateway(n.handle, gwIface, []*net.IPNet{gwNet}, 10*time.Second); err != nil {
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

// TestAgentRestartHasNoGap restarts the agent while a sampler dumps table 20
// and the routes; master is deleted while the agent is down. No sample may
// lack worker2's flow or route, and afterwards master's flow (old round) and
// route are gone.
func TestAgentRestartHasNoGap(t *testing.T) {
	n := newNode(t)
	client := fake.NewSimpleClientset(seedNodes()...)
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
			f, err1 := n.ovs.Ofctl("dump-flows", bridgeName, "table=20", "--no-stats")
			r, err2 := n.ovs.Exec("ip", "route", "show", "dev", gwIface)
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
		if !strings.Contains(s.flows, "arp_tpa=10.222.2.1,") || !strings.Contains(s.routes, "10.222.2.0/24 via 10.222.2.1") {
			t.Fatalf("sample %d lacks worker2's flow or route:\n%s\n%s", count, s.flows, s.routes)
		}
	}
	t.Logf("%d samples during the restart; none lacked worker2's flow or route", count)

	flows := must(t)(n.ovs.Ofctl("dump-flows", bridgeName, "--no-stats"))
	for _, l := range lines(flows) {
		if !strings.HasPrefix(l, "cookie=0x2") {
			t.Errorf("flow not of round 2 after the restart: %s", l)
		}
	}
	if strings.Contains(flows, "10.222.0.1") {
		t.Errorf("deleted master's flow survived the restart:\n%s", flows)
	}
	if routes := must(t)(n.ovs.Exec("ip", "route")); strings.Contains(routes, "10.222.0.0/24") {
		t.Errorf("deleted master's route survived the restart:\n%s", routes)
	}
}
