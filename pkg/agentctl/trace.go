package agentctl

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
)

const traceUsage = `trace answers "why does this node not resolve that gateway?" with OVS's
own tracer. For each remote gateway IP (given, or those of --node) it builds
the request the kernel sends out of the gateway interface (antrea-gw0) to
resolve it: an ARP request for an IPv4 gateway, a Neighbor Solicitation to
the solicited-node multicast address for an IPv6 one, from the interface's
MAC and global address (read through netlink). It runs
'ovs-appctl ofproto/trace <bridge> <request>' on it and prints:

  the path through the pipeline, in the agent's table names (Classifier,
  ArpResponder, NdpResponder, NdpResponderTll), each flow with its
  priority and cookie decoded (round, category, remote Node);
  the final action (IN_PORT when a responder answered);
  the reply's fields as OVS rewrote them (ARP: arp_op=2, eth_src and
  arp_sha the virtual MAC, arp_spa the gateway; NDP: icmpv6_type=136,
  ipv6_src the gateway, nd_tll the virtual MAC);
  when nothing answered: where the request fell through (the responder
  table's priority-190 NORMAL flow, its priority-0 drop, or no flow at
  all) and what 'agentctl check' says about the gateway's Node.

JSON and YAML carry the same per gateway (path, finalAction, reply,
outcome, answered, summary, check) and ofproto/trace's output verbatim
(ovsTrace).

--node needs the agent's local API (it maps the Node to its gateway IPs,
one per pod CIDR); a gateway IP works without the agent (then the bridge
and run directory are the defaults or the flags, and the Node is not
named). The tracer does not send anything: the bridge is only read.

Exit status: 0 every request answered, 1 one or more not answered, 2 error.

Examples:
  agentctl trace --node worker2
  agentctl trace 10.222.2.1
  agentctl trace fd00:10:222:2::1 -o json
  agentctl --ovs-rundir /var/run/openvswitch trace 10.222.2.1   # agent not running
`

var traceCommand = command{
	name:      "trace",
	summary:   "Trace the kernel's ARP request or Neighbor Solicitation for a remote gateway through the bridge with ofproto/trace.",
	usage:     traceUsage,
	arguments: "[GATEWAY-IP...]",
	flags: func(fs *flag.FlagSet, a *app) func(context.Context) int {
		var node, gwIface, out string
		fs.StringVar(&node, "node", "", "trace the gateways of this remote Node (needs the agent)")
		fs.StringVar(&gwIface, "gateway-interface", "", "the interface the kernel resolves remote gateways through (default: the agent's, else "+config.Default().GatewayInterface+")")
		registerOutput(fs, &out)
		return func(ctx context.Context) int { return a.trace(ctx, node, gwIface, out) }
	},
}

// TraceOutput is the JSON and YAML shape of `agentctl trace`.
type TraceOutput struct {
	Bridge string `json:"bridge"`
	// LocalNode is the node the agent runs on, when it answered.
	LocalNode        string           `json:"localNode,omitempty"`
	GatewayInterface GatewayInterface `json:"gatewayInterface"`
	VirtualMAC       string           `json:"virtualMAC"`
	Traces           []GatewayTrace   `json:"traces"`
}

func (a *app) trace(ctx context.Context, node, gwIface, out string) int {
	const cmd = "trace"
	if err := validOutput(out); err != nil {
		return a.usageError(cmd, err)
	}
	if (node == "") == (len(a.args) == 0) {
		return a.usageError(cmd, fmt.Errorf("give either --node NAME or gateway IPs"))
	}
	var gateways []net.IP
	for _, s := range a.args {
		ip := net.ParseIP(s)
		if ip == nil {
			return a.usageError(cmd, fmt.Errorf("%q is not an IP address", s))
		}
		gateways = append(gateways, ip)
	}

	st, stErr := a.agentState(ctx)
	if stErr != nil {
		if node != "" {
			return a.fail(cmd, fmt.Errorf("--node needs the agent's local API to map %s to its gateway IPs: %w; without the agent, give the gateway IP instead (the first address of the Node's pod CIDR: agentctl trace 10.222.2.1 for 10.222.2.0/24)", node, stErr))
		}
		t := a.target(nil)
		a.warn("%v; tracing on bridge %s in %s without Node names or agentctl check", stErr, t.Bridge, t.RunDir)
	}
	ix := newNodeIndex(st)
	if node != "" {
		if err := checkNodeName(st, node); err != nil {
			return a.fail(cmd, err)
		}
		var err error
		if gateways, err = nodeGateways(st, node); err != nil {
			return a.fail(cmd, err)
		}
	}

	if gwIface == "" {
		gwIface = config.Default().GatewayInterface
		if st != nil && st.GatewayInterface != "" {
			gwIface = st.GatewayInterface
		}
	}
	vmac := config.Default().VirtualMAC
	var round uint16
	if st != nil {
		vmac, round = st.VirtualMAC, st.FlowRound
	}
	gw, err := a.env.Gateway(a.g.netns, gwIface)
	if err != nil {
		return a.fail(cmd, fmt.Errorf("cannot read the gateway interface the kernel sends its requests from: %w", err))
	}
	target := a.target(st)
	res := TraceOutput{Bridge: target.Bridge, GatewayInterface: *gw, VirtualMAC: vmac, Traces: []GatewayTrace{}}
	if st != nil {
		res.LocalNode = st.NodeName
	}
	var check *checkSource
	for _, ip := range gateways {
		src := gw.IPv4
		if ip.To4() == nil {
			src = gw.IPv6
		}
		if src == "" {
			return a.fail(cmd, fmt.Errorf("%s has no global %s address: the kernel would not resolve %s through it", gw.Name, family(ip), ip))
		}
		mac, err := net.ParseMAC(gw.MAC)
		if err != nil {
			return a.fail(cmd, fmt.Errorf("MAC %q of %s: %w", gw.MAC, gw.Name, err))
		}
		request, err := ofctl.ResolutionRequest(gw.Name, mac, net.ParseIP(src), ip)
		if err != nil {
			return a.fail(cmd, err)
		}
		raw, err := a.tracer().Trace(ctx, target, request)
		if err != nil {
			return a.fail(cmd, fmt.Errorf("cannot trace on bridge %s: %w", target.Bridge, err))
		}
		parsed, err := ofctl.ParseTrace(raw)
		if err != nil {
			return a.fail(cmd, err)
		}
		owner := node
		if owner == "" {
			owner = ix.byGateway[ip.String()]
		}
		gt := interpretTrace(traceContext{gateway: ip, node: owner, virtualMAC: vmac, round: round, ix: ix}, request, parsed, raw)
		if !gt.Answered {
			if check == nil {
				check = a.newCheckSource(ctx, st, stErr, target)
			}
			var table uint8
			if len(gt.Path) > 0 {
				table = gt.Path[len(gt.Path)-1].Table
			}
			gt.Check = check.about(ip, owner, table)
		}
		res.Traces = append(res.Traces, gt)
	}

	if out != outputText {
		if err := writeStructured(a.env.Stdout, out, res); err != nil {
			return a.fail(cmd, err)
		}
	} else {
		writeTraces(a.env.Stdout, &res)
	}
	for _, t := range res.Traces {
		if !t.Answered {
			return ExitDrift
		}
	}
	return ExitOK
}

// nodeGateways are the gateway IPs of a remote Node: what it wants, else
// (while it is being removed) what is installed.
func nodeGateways(st *apiserver.State, name string) ([]net.IP, error) {
	n := st.RemoteNode(name)
	subnets := n.Desired
	if len(subnets) == 0 {
		subnets = n.Installed
	}
	var ips []net.IP
	for _, s := range subnets {
		ip := net.ParseIP(s.GatewayIP)
		if ip == nil {
			return nil, fmt.Errorf("node %s: gateway IP %q from the agent is not an IP", name, s.GatewayIP)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		var why []string
		for _, ig := range n.Ignored {
			why = append(why, fmt.Sprintf("%s (%s)", ig.PodCIDR, ig.Kind))
		}
		msg := fmt.Sprintf("the agent has no usable pod CIDR for node %s, so no gateway to trace", name)
		if len(why) > 0 {
			msg += "; ignored: " + strings.Join(why, ", ")
		}
		return nil, fmt.Errorf("%s", msg)
	}
	return ips, nil
}

func (a *app) tracer() ofctl.Tracer {
	if a.env.Tracer != nil {
		return a.env.Tracer
	}
	return ofctl.AppctlExec{Timeout: a.g.timeout}
}
