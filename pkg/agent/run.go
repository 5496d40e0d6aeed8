package agent

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/agent/metrics"
	"github.com/noderoute/noderoute/pkg/route"
	"github.com/noderoute/noderoute/pkg/version"
)

// Run is noderoute-agent on the node: it builds the dependencies (the
// Kubernetes client from cfg, the agent's own network namespace), sets the
// agent up with New and runs it until ctx ends. The flows and routes stay
// in place when it returns, so that a restarted agent takes over without a
// gap.
//
// The metrics server (/metrics, /healthz, /readyz) starts first, so that
// probes answer while the agent waits for OVS and its pod CIDR.
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
	ns, err := route.CurrentNamespace()
	if err != nil {
		return err
	}
	defer ns.Close()
	a, err := New(ctx, Dependencies{Nodes: client, Namespace: ns, Metrics: m}, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
