// Package agent starts the node agent: it sets up the bridge and the gateway
// interface, then runs the NodeRoute controller.
package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/agent/metrics"
	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/route"
	"github.com/noderoute/noderoute/pkg/version"
)

// gatewayLinkTimeout bounds the wait for OVS to create the gateway's kernel
// interface after the port was added.
const gatewayLinkTimeout = 30 * time.Second

// Run sets up the node and runs the controller until ctx ends. The flows
// and routes stay in place when it returns, so that a restarted agent takes
// over without a gap.
//
// The metrics server (/metrics, /healthz, /readyz) starts first, so that
// probes answer while the agent waits for OVS and its pod CIDR; the local
// API for agentctl starts once the controller exists.
func Run(ctx context.Context, cfg *config.Config) error {
	klog.InfoS("Starting noderoute-agent", "version", version.String(), "node", cfg.NodeName,
		"bridge", cfg.OVSBridge, "ovsRunDir", cfg.OVSRunDir, "datapathType", cfg.OVSDatapathType)

	m := metrics.New()
	if addr := cfg.MetricsAddress(); addr != "" {
		srv, err := m.Serve(addr)
		if err != nil {
			return err
		}
		defer srv.Close()
	}

	client, err := kubeClient(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	// The Node informer starts now, so that its initial list (0.4 s for
	// 5000 Nodes) runs while OVS is set up; the controller's handler,
	// added later, still gets every Node.
	factory := informers.NewSharedInformerFactory(client, 0)
	nodeInformer := factory.Core().V1().Nodes()
	// Only the pod CIDRs matter here: the cache keeps trimmed Nodes.
	if err := nodeInformer.Informer().SetTransform(noderoute.TrimNode); err != nil {
		return fmt.Errorf("set Node informer transform: %w", err)
	}
	// Its own context: Shutdown waits for the informer to stop, which
	// must happen however Run returns (an error in the OVS set-up must
	// not leave the agent hanging instead of exiting).
	informerCtx, stopInformer := context.WithCancel(ctx)
	factory.Start(informerCtx.Done())
	defer func() {
		stopInformer()
		factory.Shutdown()
	}()

	ovsdb, err := ovsconfig.New(ctx, cfg.DBSocket())
	if err != nil {
		return err
	}
	defer ovsdb.Close()
	bridge := ovsconfig.BridgeConfig{
		Name:         cfg.OVSBridge,
		DatapathType: ovsconfig.DatapathType(cfg.OVSDatapathType),
		GatewayPort:  cfg.GatewayInterface,
	}
	if err := ovsdb.EnsureBridge(ctx, bridge); err != nil {
		return fmt.Errorf("set up bridge %s: %w", cfg.OVSBridge, err)
	}
	round, err := ovsdb.NextFlowRound(ctx, cfg.OVSBridge)
	if err != nil {
		return fmt.Errorf("advance flow round of bridge %s: %w", cfg.OVSBridge, err)
	}

	flows := openflow.NewOFClient(cfg.OVSBridge, cfg.MgmtSocket(), cfg.MAC())
	defer flows.Disconnect()
	m.SetSources(metrics.Sources{OVSConnected: flows.Connected})
	if err := flows.Initialize(round); err != nil {
		return err
	}

	ctrl, err := noderoute.NewController(cfg.NodeName, nodeInformer, flows,
		route.NewClient(nil, cfg.GatewayInterface), cfg.ResyncPeriod.Duration)
	if err != nil {
		return err
	}
	ctrl.SetObserver(m)
	m.SetSources(metrics.Sources{Stats: ctrl.Stats, OVSConnected: flows.Connected, FullSyncDone: ctrl.FullSyncDone()})
	if cfg.APISocket != "" {
		local := &apiserver.Agent{
			NodeName:         cfg.NodeName,
			Version:          version.String(),
			Bridge:           cfg.OVSBridge,
			OVSRunDir:        cfg.OVSRunDir,
			GatewayInterface: cfg.GatewayInterface,
			VirtualMAC:       cfg.MAC().String(),
			FlowRound:        round,
			OVSConnected:     flows.Connected,
			Controller:       ctrl,
		}
		api, err := apiserver.Serve(cfg.APISocket, local.State)
		if err != nil {
			return err
		}
		defer api.Close()
	}
	// Polled every 10 ms rather than with cache.WaitForCacheSync's 100 ms:
	// the informer's list ends at an arbitrary moment and everything after
	// waits for it (up to 0.1 s of a 1.3 s cold start at 5000 Nodes).
	if err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return nodeInformer.Informer().HasSynced(), nil
	}); err != nil {
		return fmt.Errorf("Node informer did not sync: %w", err)
	}

	gateways, err := waitForLocalGateways(ctx, nodeInformer.Lister(), cfg.NodeName)
	if err != nil {
		return err
	}
	if err := route.ConfigureGateway(nil, cfg.GatewayInterface, gateways, gatewayLinkTimeout); err != nil {
		return fmt.Errorf("configure gateway interface: %w", err)
	}
	klog.InfoS("Gateway interface configured", "interface", cfg.GatewayInterface, "addresses", fmt.Sprint(gateways))
	// Recorded so that `noderoute-agent cleanup` can take off exactly
	// these, also from a gateway port the agent did not create.
	if err := ovsdb.RecordGatewayAddresses(ctx, cfg.GatewayInterface, addrStrings(gateways)); err != nil {
		return err
	}

	// From here on, a bridge or gateway port that vanishes (deleted by
	// hand, ovsdb-server restarted on a fresh database) is put back, with
	// this agent's flow round and the gateway addresses. The kernel
	// dropped the routes through the old interface: the controller puts
	// them back at once rather than at its next periodic resync.
	bridge.FlowRound = round
	monitor := NewBridgeMonitor(ovsdb, bridge, nil, gateways)
	monitor.OnGatewayRestored = ctrl.RequestRouteReconcile
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		monitor.Run(monitorCtx)
	}()
	// Stopped before the deferred ovsdb.Close, which must not pull the
	// connection from under a check.
	defer func() {
		stopMonitor()
		<-monitorDone
	}()

	// Drift repair (routes, the gateway interface, flows); stopped before
	// the OpenFlow client is disconnected.
	repairCtx, stopRepair := context.WithCancel(ctx)
	waitRepair := StartDriftRepair(repairCtx, nil, cfg.GatewayInterface, ctrl, flows, cfg.FlowCheckPeriod.Duration, m.SetWatcherRunning)
	defer func() {
		stopRepair()
		waitRepair()
	}()

	return ctrl.Run(ctx)
}

func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var restCfg *rest.Config
	var err error
	if kubeconfig == "" {
		restCfg, err = rest.InClusterConfig()
	} else {
		restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client config (kubeconfig %q): %w", kubeconfig, err)
	}
	restCfg.UserAgent = "noderoute-agent/" + version.Version
	// Protobuf for the built-in types the agent reads (Nodes): several
	// times cheaper to decode than JSON, for the initial list and for every
	// status update of every Node. JSON stays accepted for servers or
	// proxies that answer nothing else.
	restCfg.ContentType = runtime.ContentTypeProtobuf
	restCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	// No gzip: the API server would compress every watch event for
	// every agent and each agent decompress it again, CPU on both sides
	// for traffic that stays inside the cluster's network
	// (docs/performance.md has the profile).
	restCfg.DisableCompression = true
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, nil
}

// waitForLocalGateways waits until this node's Node object has pod CIDRs and
// returns the gateway addresses for the gateway interface (10.222.1.1/24 for
// 10.222.1.0/24). The node IPAM controller may assign them after the agent
// starts, so waiting is the normal path, not an error.
func waitForLocalGateways(ctx context.Context, lister corelisters.NodeLister, name string) ([]*net.IPNet, error) {
	var gateways []*net.IPNet
	lastLog := time.Time{}
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(context.Context) (bool, error) {
		node, err := lister.Get(name)
		var reason string
		switch {
		case apierrors.IsNotFound(err):
			reason = "Node object not found"
		case err != nil:
			return false, err
		default:
			gateways = noderoute.GatewayAddresses(node)
			if len(gateways) > 0 {
				return true, nil
			}
			reason = "Node has no usable pod CIDR yet"
		}
		if time.Since(lastLog) > 30*time.Second {
			klog.InfoS("Waiting for this node's pod CIDR", "node", name, "reason", reason)
			lastLog = time.Now()
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for pod CIDR of node %s: %w", name, err)
	}
	return gateways, nil
}

func addrStrings(addrs []*net.IPNet) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}
