package agentctl

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"sort"
	"text/tabwriter"

	"github.com/noderoute/noderoute/pkg/route"
)

const routesUsage = `The routes are those of the main table that carry the agent's protocol
(proto 94), in both address families, whatever their device. The Node of
each is the remote Node whose pod CIDR it is (as the agent wants or has it);
'-' marks a route no Node owns, '?' one that cannot be mapped because the
agent's API did not answer.

Routes are read in agentctl's own network namespace, which on the host and
in the agent's container (hostNetwork) is the node's; --netns reads another.

Examples:
  agentctl routes
  agentctl routes --node worker2 -o yaml
  agentctl --netns /var/run/netns/test routes
`

var routesCommand = command{
	name:    "routes",
	summary: "Show the routes the agent owns (proto 94) and the remote Node of each.",
	usage:   routesUsage,
	flags: func(fs *flag.FlagSet, a *app) func(context.Context) int {
		var node, out string
		fs.StringVar(&node, "node", "", "only the routes of this remote Node")
		registerOutput(fs, &out)
		return func(ctx context.Context) int { return a.routes(ctx, node, out) }
	},
}

// RoutesOutput is the JSON and YAML shape of `agentctl routes`.
type RoutesOutput struct {
	// Protocol is the route protocol that marks the agent's routes.
	Protocol int         `json:"protocol"`
	Routes   []RouteInfo `json:"routes"`
}

// RouteInfo is one route in structured output.
type RouteInfo struct {
	Destination string `json:"destination"`
	Gateway     string `json:"gateway"`
	// Node is the remote Node whose pod CIDR the destination is; empty
	// when no Node owns it or the agent did not answer.
	Node string `json:"node,omitempty"`
}

func (a *app) routes(ctx context.Context, node, out string) int {
	const cmd = "routes"
	if err := validOutput(out); err != nil {
		return a.usageError(cmd, err)
	}
	st, stErr := a.agentState(ctx)
	if stErr != nil {
		if node != "" {
			return a.fail(cmd, fmt.Errorf("--node needs the agent to map routes to Nodes: %w", stErr))
		}
		a.warn("%v; showing routes without Node names", stErr)
	}
	if node != "" {
		if err := checkNodeName(st, node); err != nil {
			return a.fail(cmd, err)
		}
	}
	routes, err := a.listRoutes()
	if err != nil {
		return a.fail(cmd, err)
	}
	sortRoutes(routes)
	ix := newNodeIndex(st)
	res := RoutesOutput{Protocol: route.Protocol, Routes: []RouteInfo{}}
	for _, r := range routes {
		ri := RouteInfo{Destination: r.Dst.String(), Gateway: ipString(r.Gateway), Node: ix.byCIDR[r.Dst.String()]}
		if node != "" && ri.Node != node {
			continue
		}
		res.Routes = append(res.Routes, ri)
	}
	if out != outputText {
		if err := writeStructured(a.env.Stdout, out, res); err != nil {
			return a.fail(cmd, err)
		}
		return ExitOK
	}
	if len(res.Routes) == 0 {
		msg := fmt.Sprintf("no routes with protocol %d", route.Protocol)
		if node != "" {
			msg += " of node " + node
		}
		fmt.Fprintf(a.env.Stderr, "agentctl: %s\n", msg)
		return ExitOK
	}
	tw := tabwriter.NewWriter(a.env.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tGATEWAY\tNODE")
	for _, r := range res.Routes {
		n := r.Node
		switch {
		case st == nil:
			n = "?"
		case n == "":
			n = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Destination, r.Gateway, n)
	}
	if err := tw.Flush(); err != nil {
		return a.fail(cmd, err)
	}
	return ExitOK
}

// sortRoutes orders routes IPv4 first, then by address and prefix length.
func sortRoutes(routes []route.Route) {
	sort.Slice(routes, func(i, j int) bool { return bytes.Compare(routeKey(routes[i]), routeKey(routes[j])) < 0 })
}

func routeKey(r route.Route) []byte {
	ip := r.Dst.IP.To4()
	fam := byte(4)
	if ip == nil {
		ip, fam = r.Dst.IP.To16(), 6
	}
	ones, _ := r.Dst.Mask.Size()
	return append(append([]byte{fam}, ip...), byte(ones))
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}
