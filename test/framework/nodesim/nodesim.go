//go:build linux

// Package nodesim simulates one node for integration tests: a throwaway
// network namespace with its own OVS (userspace datapath), and the agent
// built by agent.New as agent.Run builds it, but in that namespace instead
// of the process's own and with any Kubernetes client (fake or real).
package nodesim

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/watchlist"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/agent"
	"github.com/noderoute/noderoute/pkg/agent/config"
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
	// LocalNode is the node the simulated agent runs for: worker1 of
	// the three-Node cluster, so its routes go to master and worker2.
	LocalNode = testsupport.LocalNode
)

// VirtualMAC is the agent's default virtual MAC.
var VirtualMAC, _ = net.ParseMAC("aa:bb:cc:dd:ee:ff")

// ClusterNodes are the three-Node cluster's Nodes (master, worker1,
// worker2; IPv4 pod CIDRs), as objects for a fake clientset.
func ClusterNodes() []runtime.Object { return objects(testsupport.ClusterNodeObjects()) }

// DualStackClusterNodes are ClusterNodes with an IPv6 pod CIDR each.
func DualStackClusterNodes() []runtime.Object {
	return objects(testsupport.DualStackClusterNodeObjects())
}

func objects(nodes []*corev1.Node) []runtime.Object {
	objs := make([]runtime.Object, 0, len(nodes))
	for _, n := range nodes {
		objs = append(objs, n)
	}
	return objs
}

// Host is a simulated node: its OVS instance and its network namespace.
type Host struct {
	OVS *ovstest.Instance
	// Namespace is the host's network namespace, as the agent takes it.
	Namespace *route.Namespace
	// Handle is Namespace's netlink handle, for tests that look at the
	// kernel's state.
	Handle *netlink.Handle
}

// NewHost starts a host; it skips the test where ovstest.Start does.
func NewHost(t testing.TB) *Host {
	t.Helper()
	inst := ovstest.Start(t)
	ns, err := route.NamespaceFromPath(inst.NetNSPath())
	if err != nil {
		t.Fatalf("netns %s: %v", inst.NetNS, err)
	}
	t.Cleanup(ns.Close)
	return &Host{OVS: inst, Namespace: ns, Handle: ns.Netlink()}
}

// Agent is one incarnation of the agent on a host.
type Agent struct {
	Flows *openflow.OFClient
	Ctrl  *noderoute.Controller
	Round uint16
	// NoRepair, set before Run, leaves out the watchers and the flow
	// check, so that drift made by hand stays (tests of agentctl check).
	NoRepair bool

	agent    *agent.Agent
	stopOnce sync.Once
	started  bool
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

// Config is the agent's configuration on a host: the defaults, for
// LocalNode, with the host's OVS (userspace datapath), no local API and no
// metrics server.
func (h *Host) Config(resyncPeriod time.Duration) *config.Config {
	cfg := config.Default()
	cfg.NodeName = LocalNode
	cfg.OVSBridge = Bridge
	cfg.OVSRunDir = h.OVS.RunDir
	cfg.OVSDatapathType = string(ovsconfig.DatapathNetdev)
	cfg.GatewayInterface = GatewayInterface
	cfg.VirtualMAC = VirtualMAC.String()
	cfg.ResyncPeriod = config.Duration{Duration: resyncPeriod}
	cfg.APISocket = ""
	cfg.MetricsBindAddress = "0"
	return &cfg
}

// NewAgent does what noderoute-agent does at start for LocalNode, up to the
// controller's start (agent.New): the Node informer, bridge and gateway
// port through OVSDB, the next flow round, the base flows. Call Run to
// start the rest (after wiring observers).
func (h *Host) NewAgent(t testing.TB, client kubernetes.Interface, resyncPeriod time.Duration) *Agent {
	t.Helper()
	cfg := h.Config(resyncPeriod)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, agent.Dependencies{Nodes: nodesOf(client), Namespace: h.Namespace}, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sim := &Agent{Flows: a.Flows(), Ctrl: a.Controller(), Round: a.FlowRound(),
		agent: a, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(sim.Stop)
	return sim
}

// Run starts the agent (agent.Agent.Run: the gateway interface, the
// controller, the bridge monitor and, unless NoRepair, the drift repair with
// the flow check at its default period) and waits for the first full sync.
func (a *Agent) Run(t testing.TB) {
	t.Helper()
	a.started = true
	if a.NoRepair {
		a.agent.DisableDriftRepair()
	}
	go func() {
		defer close(a.done)
		if err := a.agent.Run(a.ctx); err != nil && a.ctx.Err() == nil {
			t.Errorf("agent: %v", err)
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

// Stop stops the agent and closes its OpenFlow and OVSDB connections,
// leaving the flows and routes in place as the real agent does.
// Idempotent.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.cancel()
		if a.started {
			select {
			case <-a.done:
			case <-time.After(10 * time.Second):
			}
		}
		a.agent.Close()
	})
}

// nodes is a clientset's Node client as the agent takes it, telling the
// informer whether the clientset can stream its initial state (fakes cannot).
type nodes struct {
	corev1client.NodeInterface
	noWatchList bool
}

func (n nodes) IsWatchListSemanticsUnSupported() bool { return n.noWatchList }

func nodesOf(client kubernetes.Interface) nodes {
	return nodes{NodeInterface: client.CoreV1().Nodes(), noWatchList: watchlist.DoesClientNotSupportWatchListSemantics(client)}
}
