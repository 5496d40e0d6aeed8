package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/route"
)

// gatewayLinkTimeout bounds the wait for OVS to create the gateway's kernel
// interface after the port was added.
const gatewayLinkTimeout = 30 * time.Second

// configureGateway waits for this node's pod CIDRs, gives the gateway
// interface their gateway addresses and records them in OVSDB, and returns
// them.
func (a *Agent) configureGateway(ctx context.Context) ([]*net.IPNet, error) {
	name := a.cfg.GatewayInterface
	gateways, err := waitForLocalGateways(ctx, a.nodeInformer.Lister(), a.cfg.NodeName)
	if err != nil {
		return nil, err
	}
	if err := route.ConfigureGateway(a.ns, name, gateways, gatewayLinkTimeout); err != nil {
		return nil, fmt.Errorf("configure gateway interface: %w", err)
	}
	klog.InfoS("Gateway interface configured", "interface", name, "addresses", fmt.Sprint(gateways))
	// Recorded so that `noderoute-agent cleanup` can take off exactly
	// these, also from a gateway port the agent did not create.
	if err := a.ovsdb.RecordGatewayAddresses(ctx, name, addrStrings(gateways)); err != nil {
		return nil, err
	}
	return gateways, nil
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
