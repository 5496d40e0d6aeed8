//go:build linux

// Package nodesim simulates one node for integration tests: a throwaway
// network namespace with its own OVS (userspace datapath), and the agent's
// data path wired as agent.Run wires it, but with a netlink handle into
// that namespace instead of the process's own and any Kubernetes client
// (fake or real).
package nodesim

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/noderoute/noderoute/pkg/agent"
	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
	"github.com/noderoute/noderoute/pkg/route"
)

const (
	// Bridge and GatewayInterface are the agent's defaults.
	Bridge           = "br-int"
	GatewayInterface = "antrea-gw0"
	// LocalNode is the node the simulated agent runs for, as in the seed.
	LocalNode = "worker1"
)

// VirtualMAC is the agent's default virtual MAC.
var VirtualMAC, _ = net.ParseMAC("aa:bb:cc:dd:ee:ff")

// Node returns a Node object with the given pod CIDRs.
func Node(name string, cidrs ...string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
}

// SeedNodes are the seed's cluster: master, worker1, worker2.
func SeedNodes() []runtime.Object {
	return []runtime.Object{Node("master", "10.222.0.0/24"), Node("worker1", "10.222.1.0/24"), Node("worker2", "10.222.2.0/24")}
}

// DualStackNodes are the seed's Nodes with an IPv6 pod CIDR each.
func DualStackNodes() []runtime.Object {
	return []runtime.Object{
		Node("master", "10.222.0.0/24", "fd00:10:222::/64"),
		Node("worker1", "10.222.1.0/24", "fd00:10:222:1::/64"),
		Node("worker2", "10.222.2.0/24", "fd00:10:222:2::/64"),
	}
}

// Host is a simulated node: its OVS instance and a netlink handle into its
// network namespace.
type Host struct {
	OVS    *ovstest.Instance
	Handle *netlink.Handle
	// NS is the host's network namespace (the route watcher subscribes
	// in it).
	NS netns.NsHandle
}

// NewHost starts a host; it skips the test where ovstest.Start does.
func NewHost(t testing.TB) *Host {
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
	return &Host{OVS: inst, Handle: handle, NS: ns}
}

// Agent is one incarnation of the agent on a host.
type Agent struct {
	Flows *openflow.OFClient
	Ctrl  *noderoute.Controller
	Round uint16
	// Monitor puts the bridge and gateway back as agent.Run's does, and
	// asks Ctrl for a route reconcile when it re-configured the gateway.
	Monitor *agent.BridgeMonitor
	// NoRepair, set before Run, leaves out the route watcher and the flow
	// check, so that drift made by hand stays (tests of agentctl check).
	NoRepair bool

	ovsdb       *ovsconfig.Client
	ns          netns.NsHandle
	monitorDone chan struct{}
	repairDone  chan struct{}
	factory     informers.SharedInformerFactory
	stopOnce    sync.Once
	started     bool
	ctx         context.Context
	cancel      context.CancelFunc
	done        chan struct{}
}

// NewAgent does what noderoute-agent does at start for LocalNode, up to the
// controller's start: bridge and gateway port through OVSDB, the next flow
// round, the base flows, the gateway addresses derived from the local Node
// object. Call Run to start the controller and the bridge monitor (after
// wiring observers).
func (h *Host) NewAgent(t testing.TB, client kubernetes.Interface, resyncPeriod time.Duration) *Agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ovsdb, err := ovsconfig.New(ctx, h.OVS.DBSock())
	if err != nil {
		t.Fatal(err)
	}
	// Closed by Stop: the bridge monitor keeps using it.
	ok := false
	defer func() {
		if !ok {
			ovsdb.Close()
		}
	}()
	bridge := ovsconfig.BridgeConfig{Name: Bridge, DatapathType: ovsconfig.DatapathNetdev, GatewayPort: GatewayInterface}
	if err := ovsdb.EnsureBridge(ctx, bridge); err != nil {
		t.Fatal(err)
	}
	round, err := ovsdb.NextFlowRound(ctx, Bridge)
	if err != nil {
		t.Fatal(err)
	}
	flows := openflow.NewOFClient(Bridge, h.OVS.MgmtSock(Bridge), VirtualMAC)
	if err := flows.Initialize(round); err != nil {
		t.Fatal(err)
	}
	self, err := client.CoreV1().Nodes().Get(ctx, LocalNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gateways := noderoute.GatewayAddresses(self)
	if err := route.ConfigureGateway(h.Handle, GatewayInterface, gateways, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, 0, len(gateways))
	for _, g := range gateways {
		addrs = append(addrs, g.String())
	}
	if err := ovsdb.RecordGatewayAddresses(ctx, GatewayInterface, addrs); err != nil {
		t.Fatal(err)
	}
	bridge.FlowRound = round
	monitor := agent.NewBridgeMonitor(ovsdb, bridge, h.Handle, gateways)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := noderoute.NewController(LocalNode, factory.Core().V1().Nodes(), flows, route.NewClient(h.Handle, GatewayInterface), resyncPeriod)
	if err != nil {
		t.Fatal(err)
	}
	monitor.OnGatewayRestored = ctrl.RequestRouteReconcile
	a := &Agent{Flows: flows, Ctrl: ctrl, Round: round, Monitor: monitor, ovsdb: ovsdb, ns: h.NS,
		monitorDone: make(chan struct{}), repairDone: make(chan struct{}),
		factory: factory, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	ok = true
	t.Cleanup(a.Stop)
	return a
}

// Run starts the informer and the controller and waits for the first full
// sync.
func (a *Agent) Run(t testing.TB) {
	t.Helper()
	a.started = true
	a.factory.Start(a.ctx.Done())
	go func() {
		defer close(a.monitorDone)
		a.Monitor.Run(a.ctx)
	}()
	// Drift repair as agent.Run has it, the flow check at its default
	// period.
	go func() {
		defer close(a.repairDone)
		if a.NoRepair {
			return
		}
		agent.StartDriftRepair(a.ctx, &a.ns, GatewayInterface, a.Ctrl, a.Flows, openflow.DefaultFlowCheckPeriod, nil)()
	}()
	go func() {
		defer close(a.done)
		if err := a.Ctrl.Run(a.ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	select {
	case <-a.Ctrl.FullSyncDone():
	case <-time.After(30 * time.Second):
		t.Fatal("first full sync not done after 30s")
	}
}

// StartAgent is NewAgent then Run.
func (h *Host) StartAgent(t testing.TB, client kubernetes.Interface, resyncPeriod time.Duration) *Agent {
	t.Helper()
	a := h.NewAgent(t, client, resyncPeriod)
	a.Run(t)
	return a
}

// Stop stops the controller, the bridge monitor and the drift repair and closes the OpenFlow
// and OVSDB connections, leaving the flows and routes in place as the real
// agent does. Idempotent.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.cancel()
		if a.started {
			for _, done := range []chan struct{}{a.done, a.monitorDone, a.repairDone} {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
				}
			}
		}
		a.Flows.Disconnect()
		a.ovsdb.Close()
	})
}
