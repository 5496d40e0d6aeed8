// Package agent starts the node agent: it sets up the bridge and the gateway
// interface, then runs the NodeRoute controller.
package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/agent/metrics"
	"github.com/noderoute/noderoute/pkg/agent/nodeclient"
	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/route"
	"github.com/noderoute/noderoute/pkg/version"
)

// Dependencies are what the agent is given rather than builds, so that the
// command (on the node) and the integration tests (in a namespace of their
// own, over a fake API server) wire it the same way.
type Dependencies struct {
	// Nodes lists and watches the Node objects.
	Nodes nodeclient.Interface
	// Namespace holds the gateway interface and the routes; the agent
	// does not close it.
	Namespace *route.Namespace
	// Metrics receives the controller's syncs and the agent's gauges;
	// New makes a private one when it is nil (tests without metrics).
	Metrics *metrics.Metrics
}

// Agent is the node agent set up up to the controller's start: the Node
// informer listing, the bridge and gateway port in OVSDB, the base flows of
// a new flow round. Run does the rest.
type Agent struct {
	cfg          *config.Config
	ns           *route.Namespace
	metrics      *metrics.Metrics
	nodeInformer *nodeclient.Informer
	stopInformer context.CancelFunc
	informerDone chan struct{}
	ovsdb        *ovsconfig.Client
	bridge       ovsconfig.BridgeConfig
	flows        *openflow.OFClient
	ctrl         *noderoute.Controller
	round        uint16
	driftRepair  bool
}

// New sets the agent up, as configured by cfg (whose OVSRunDir locates
// OVSDB and the bridge's OpenFlow socket), with deps. Close releases what it
// opened, New's context only bounds the set-up, except that the Node
// informer stops with it.
func New(ctx context.Context, deps Dependencies, cfg *config.Config) (*Agent, error) {
	a := &Agent{cfg: cfg, ns: deps.Namespace, metrics: deps.Metrics, driftRepair: true}
	if a.metrics == nil {
		a.metrics = metrics.New()
	}
	if err := a.startInformer(ctx, deps.Nodes); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := a.setUpOVS(ctx); err != nil {
		return nil, err
	}
	ctrl, err := noderoute.NewController(cfg.NodeName, a.nodeInformer, a.flows,
		route.NewClient(a.ns, cfg.GatewayInterface), cfg.ResyncPeriod.Duration)
	if err != nil {
		return nil, err
	}
	a.ctrl = ctrl
	ctrl.SetObserver(a.metrics)
	a.metrics.SetSources(metrics.Sources{Stats: ctrl.Stats, OVSConnected: a.flows.Connected, FullSyncDone: ctrl.FullSyncDone()})
	ok = true
	return a, nil
}

// startInformer starts the Node informer now, so that its initial list runs
// while OVS is set up; the controller's handler, added later, still gets
// every Node.
func (a *Agent) startInformer(ctx context.Context, nodes nodeclient.Interface) error {
	a.nodeInformer = nodeclient.NewInformer(nodes)
	// Only the pod CIDRs matter here: the cache keeps trimmed Nodes.
	if err := a.nodeInformer.Informer().SetTransform(noderoute.TrimNode); err != nil {
		return fmt.Errorf("set Node informer transform: %w", err)
	}
	// Its own context: Close waits for the informer to stop, which must
	// happen however the agent ends (an error in the OVS set-up must not
	// leave the agent hanging instead of exiting).
	informerCtx, stop := context.WithCancel(ctx)
	a.stopInformer = stop
	a.informerDone = make(chan struct{})
	go func() {
		defer close(a.informerDone)
		a.nodeInformer.Informer().RunWithContext(informerCtx)
	}()
	return nil
}

// setUpOVS makes sure the bridge and the gateway port exist, advances the
// bridge's flow round and installs the base flows of the new round.
func (a *Agent) setUpOVS(ctx context.Context) error {
	cfg := a.cfg
	ovsdb, err := ovsconfig.New(ctx, cfg.DBSocket())
	if err != nil {
		return err
	}
	a.ovsdb = ovsdb
	a.bridge = ovsconfig.BridgeConfig{
		Name:         cfg.OVSBridge,
		DatapathType: ovsconfig.DatapathType(cfg.OVSDatapathType),
		GatewayPort:  cfg.GatewayInterface,
	}
	if err := ovsdb.EnsureBridge(ctx, a.bridge); err != nil {
		return fmt.Errorf("set up bridge %s: %w", cfg.OVSBridge, err)
	}
	round, err := ovsdb.NextFlowRound(ctx, cfg.OVSBridge)
	if err != nil {
		return fmt.Errorf("advance flow round of bridge %s: %w", cfg.OVSBridge, err)
	}
	a.round = round
	a.flows = openflow.NewOFClient(cfg.OVSBridge, cfg.MgmtSocket(), cfg.MAC())
	a.metrics.SetSources(metrics.Sources{OVSConnected: a.flows.Connected})
	return a.flows.Initialize(round)
}

// Controller is the NodeRoute controller, for observers and the local API.
func (a *Agent) Controller() *noderoute.Controller { return a.ctrl }

// Flows is the OpenFlow client.
func (a *Agent) Flows() *openflow.OFClient { return a.flows }

// FlowRound is the flow round this agent's flows carry.
func (a *Agent) FlowRound() uint16 { return a.round }

// DisableDriftRepair, called before Run, leaves out the route and gateway
// interface watchers and the flow check, so that drift made by hand stays
// (tests of agentctl check).
func (a *Agent) DisableDriftRepair() { a.driftRepair = false }

// Run configures the gateway interface and runs the controller, the bridge
// monitor and the drift repair until ctx ends. The flows and routes stay in
// place when it returns, so that a restarted agent takes over without a
// gap. The local API for agentctl, if configured, starts first.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.APISocket != "" {
		api, err := a.serveAPI()
		if err != nil {
			return err
		}
		defer api.Close()
	}
	// Polled every 10 ms rather than with cache.WaitForCacheSync's 100 ms:
	// the informer's list ends at an arbitrary moment and everything after
	// waits for it, so a coarse poll adds up to its whole interval to every
	// cold start (see docs/performance.md).
	if err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return a.nodeInformer.Informer().HasSynced(), nil
	}); err != nil {
		return fmt.Errorf("Node informer did not sync: %w", err)
	}
	gateways, err := a.configureGateway(ctx)
	if err != nil {
		return err
	}

	// From here on, a bridge or gateway port that vanishes (deleted by
	// hand, ovsdb-server restarted on a fresh database) is put back, with
	// this agent's flow round and the gateway addresses. The kernel
	// dropped the routes through the old interface: the controller puts
	// them back at once rather than at its next periodic resync.
	bridge := a.bridge
	bridge.FlowRound = a.round
	monitor := NewBridgeMonitor(a.ovsdb, bridge, a.ns, gateways)
	monitor.OnGatewayRestored = a.ctrl.RequestRouteReconcile
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		monitor.Run(monitorCtx)
	}()
	// Stopped before Close closes OVSDB, which must not pull the
	// connection from under a check.
	defer func() {
		stopMonitor()
		<-monitorDone
	}()

	// Drift repair (routes, the gateway interface, flows); stopped before
	// Close disconnects the OpenFlow client.
	if a.driftRepair {
		repairCtx, stopRepair := context.WithCancel(ctx)
		waitRepair := StartDriftRepair(repairCtx, a.ns, a.cfg.GatewayInterface, a.ctrl, a.flows, a.cfg.FlowCheckPeriod.Duration, a.metrics.SetWatcherRunning)
		defer func() {
			stopRepair()
			waitRepair()
		}()
	}

	return a.ctrl.Run(ctx)
}

// serveAPI starts the local API agentctl talks to.
func (a *Agent) serveAPI() (*apiserver.Server, error) {
	cfg := a.cfg
	local := &apiserver.Agent{
		NodeName:         cfg.NodeName,
		Version:          version.String(),
		Bridge:           cfg.OVSBridge,
		OVSRunDir:        cfg.OVSRunDir,
		GatewayInterface: cfg.GatewayInterface,
		VirtualMAC:       cfg.MAC().String(),
		FlowRound:        a.round,
		OVSConnected:     a.flows.Connected,
		Controller:       a.ctrl,
	}
	return apiserver.Serve(cfg.APISocket, local.State)
}

// Close disconnects from OVS and stops the Node informer; call it after Run
// returned (or instead of Run).
func (a *Agent) Close() {
	if a.flows != nil {
		a.flows.Disconnect()
	}
	if a.ovsdb != nil {
		a.ovsdb.Close()
	}
	a.stopInformer()
	<-a.informerDone
}
