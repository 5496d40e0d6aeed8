// Package cleanup removes from this node what noderoute-agent put there, and
// nothing else (`noderoute-agent cleanup`): routes with the agent's protocol
// (both families), flows with the agent's cookies in the pipeline's tables,
// the gateway addresses it recorded, its external_ids keys, and the gateway
// port and the bridge if the agent created them (ovsconfig.OwnerExternalID).
// A bridge or port the operator made stays, with the agent's flows removed.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/route"
)

// ErrAgentRunning is returned, before anything is read or changed, when an
// agent answers on the local API socket: it would put everything back
// within seconds (its watchers and monitors repair deletions). A dry run
// goes ahead, with a note.
var ErrAgentRunning = errors.New("noderoute-agent is running on this node")

// interfaceRemovalTimeout bounds the wait for ovs-vswitchd to remove the
// interfaces of a deleted bridge or port.
const interfaceRemovalTimeout = 10 * time.Second

// ErrIncomplete is wrapped by Run's error when something could not be
// removed; the output names each such thing.
var ErrIncomplete = errors.New("not everything could be removed")

// Options say where and how to clean up.
type Options struct {
	Config *config.Config
	// DryRun prints what would be removed and changes nothing.
	DryRun bool
	// Out receives one line per thing removed (or that would be), then a
	// summary.
	Out io.Writer
	// Namespace is the node's network namespace (route.CurrentNamespace
	// on the node itself).
	Namespace *route.Namespace
	// OFCtl runs ovs-ofctl; the zero value finds it in PATH.
	OFCtl ofctl.Exec
}

// item is one thing to remove.
type item struct {
	kind string // route, flow, address, port, external_ids, bridge
	desc string
	do   func(context.Context) error
}

// Run cleans up (or, with DryRun, says what it would clean up). It returns
// ErrAgentRunning when an agent runs, an error wrapping ErrIncomplete when
// something could not be read or removed, nil when the node is clean.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	if err := checkAgentStopped(cfg.APISocket); err != nil {
		if !opts.DryRun {
			return err
		}
		// A dry run changes nothing, so it may preview what an
		// uninstall will remove while the agent still runs.
		fmt.Fprintf(opts.Out, "note: %v; this dry run only lists\n", err)
	}
	p := &planner{opts: opts}
	items := p.plan(ctx)
	return report(ctx, opts, items, p.failures, p.kept)
}

// checkAgentStopped fails when something answers on the agent's local API
// socket. A socket file nobody listens on (an agent killed with SIGKILL)
// does not count.
func checkAgentStopped(socket string) error {
	if socket == "" {
		return nil
	}
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("%w (its local API answers at %s): stop it first (delete the DaemonSet, see docs/install.md#uninstall), or it would put back what cleanup removes", ErrAgentRunning, socket)
}

// planner collects what to remove, and what could not even be read.
type planner struct {
	opts     Options
	failures []string
	// kept describes what stays on purpose (a bridge the operator made).
	kept []string
}

func (p *planner) fail(format string, args ...any) {
	p.failures = append(p.failures, fmt.Sprintf(format, args...))
}

func (p *planner) plan(ctx context.Context) []item {
	items := p.planRoutes()
	return append(items, p.planOVS(ctx)...)
}

func (p *planner) planRoutes() []item {
	rc := route.NewClient(p.opts.Namespace, p.opts.Config.GatewayInterface)
	routes, err := rc.ListRoutes()
	if err != nil {
		p.fail("routes with protocol %d: %v", route.Protocol, err)
		return nil
	}
	var items []item
	for _, r := range routes {
		dst := r.Dst
		desc := dst.String()
		if r.Gateway != nil {
			desc += " via " + r.Gateway.String()
		}
		items = append(items, item{kind: "route", desc: fmt.Sprintf("%s proto %d", desc, route.Protocol), do: func(context.Context) error {
			return rc.DeleteRoute(dst)
		}})
	}
	return items
}

func (p *planner) planOVS(ctx context.Context) []item {
	cfg := p.opts.Config
	db, err := ovsconfig.New(ctx, cfg.DBSocket())
	if err != nil {
		p.fail("bridge %s: %v", cfg.OVSBridge, err)
		return nil
	}
	st, err := db.InspectBridge(ctx, cfg.OVSBridge, cfg.GatewayInterface)
	if err != nil {
		db.Close()
		p.fail("bridge %s: %v", cfg.OVSBridge, err)
		return nil
	}
	if !st.Exists {
		db.Close()
		p.kept = append(p.kept, fmt.Sprintf("bridge %s does not exist", cfg.OVSBridge))
		return nil
	}
	items := p.planFlows(ctx)
	deleteBridge := st.Owned && len(st.OtherPorts) == 0
	gw := st.Gateway
	deletePort := gw != nil && gw.Owned && !deleteBridge
	if gw != nil && !gw.Owned {
		items = append(items, p.planAddresses(gw)...)
	}
	if deletePort {
		items = append(items, item{kind: "port", desc: fmt.Sprintf("%s of bridge %s (created by noderoute-agent)", gw.Name, cfg.OVSBridge), do: func(ctx context.Context) error {
			if err := db.DeletePort(ctx, cfg.OVSBridge, gw.Name); err != nil {
				return err
			}
			return route.WaitLinksGone(p.opts.Namespace, []string{gw.Name}, interfaceRemovalTimeout)
		}})
	}
	if !deleteBridge {
		var keys []string
		if len(st.AgentKeys) > 0 {
			keys = append(keys, fmt.Sprintf("%s of bridge %s", strings.Join(st.AgentKeys, ", "), cfg.OVSBridge))
		}
		if gw != nil && !deletePort && len(gw.AgentKeys) > 0 {
			keys = append(keys, fmt.Sprintf("%s of port %s", strings.Join(gw.AgentKeys, ", "), gw.Name))
		}
		if len(keys) > 0 {
			items = append(items, item{kind: "external_ids", desc: strings.Join(keys, "; "), do: func(ctx context.Context) error {
				return db.ForgetAgentKeys(ctx, cfg.OVSBridge, cfg.GatewayInterface)
			}})
		}
		switch {
		case st.Owned:
			p.fail("bridge %s (created by noderoute-agent) not removed: it has ports noderoute-agent did not create: %s", cfg.OVSBridge, strings.Join(st.OtherPorts, ", "))
		default:
			p.kept = append(p.kept, fmt.Sprintf("bridge %s kept: not created by noderoute-agent", cfg.OVSBridge))
		}
	} else {
		desc := fmt.Sprintf("%s (created by noderoute-agent)", cfg.OVSBridge)
		if gw != nil {
			desc = fmt.Sprintf("%s (created by noderoute-agent, with its port %s)", cfg.OVSBridge, gw.Name)
		}
		items = append(items, item{kind: "bridge", desc: desc, do: func(ctx context.Context) error {
			if err := db.DeleteBridge(ctx, cfg.OVSBridge); err != nil {
				return err
			}
			links := []string{cfg.OVSBridge}
			if gw != nil {
				links = append(links, gw.Name)
			}
			return route.WaitLinksGone(p.opts.Namespace, links, interfaceRemovalTimeout)
		}})
	}
	// The connection is closed after the last item ran (report).
	items = append(items, item{kind: "", do: func(context.Context) error { db.Close(); return nil }})
	return items
}

// planFlows lists the agent's flows table by table (only our tables are
// ever dumped, see openflow.IsOwnedFlow) and deletes them with cookie
// masks, which select the same flows, in one ovs-ofctl run.
func (p *planner) planFlows(ctx context.Context) []item {
	cfg := p.opts.Config
	target := ofctl.Target{RunDir: cfg.OVSRunDir, Bridge: cfg.OVSBridge}
	var items []item
	var specs []string
	for _, table := range openflow.Tables() {
		flows, err := p.opts.OFCtl.DumpFlows(ctx, target, ofctl.DumpOptions{Table: int(table), NoStats: true})
		if err != nil {
			p.fail("flows of bridge %s: %v", cfg.OVSBridge, err)
			return nil
		}
		for _, f := range flows {
			if !openflow.IsOwnedFlow(f.Table, f.Cookie) {
				continue
			}
			items = append(items, item{kind: "flow", desc: f.Line})
		}
		for _, c := range openflow.OwnedCookiePatterns() {
			specs = append(specs, fmt.Sprintf("table=%d,cookie=%#x/%#x", table, c.Value, c.Mask))
		}
	}
	if len(items) == 0 {
		return nil
	}
	// One run deletes them all; the first flow item carries it.
	items[0].do = func(ctx context.Context) error { return p.opts.OFCtl.DelFlows(ctx, target, specs) }
	return items
}

// planAddresses lists the recorded gateway addresses still on a gateway
// interface the agent did not create.
func (p *planner) planAddresses(gw *ovsconfig.PortState) []item {
	var addrs []*net.IPNet
	for _, s := range gw.Addresses {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			p.fail("gateway address %q recorded on port %s: %v", s, gw.Name, err)
			continue
		}
		addrs = append(addrs, &net.IPNet{IP: ip, Mask: n.Mask})
	}
	present, err := route.GatewayAddressesPresent(p.opts.Namespace, gw.Name, addrs)
	if err != nil {
		p.fail("addresses of %s: %v", gw.Name, err)
		return nil
	}
	var items []item
	for _, a := range present {
		items = append(items, item{kind: "address", desc: fmt.Sprintf("%s from %s", a, gw.Name), do: func(context.Context) error {
			return route.RemoveGatewayAddress(p.opts.Namespace, gw.Name, a)
		}})
	}
	return items
}

// report runs the items (unless DryRun) and prints one line each, then a
// summary.
func report(ctx context.Context, opts Options, items []item, failures, kept []string) error {
	out := opts.Out
	verb := "removed"
	if opts.DryRun {
		verb = "would remove"
	}
	counts := map[string]int{}
	var order []string
	var flowErr error
	flowDone := false
	for _, it := range items {
		if it.kind == "" {
			it.do(ctx)
			continue
		}
		var err error
		switch {
		case opts.DryRun:
		case it.kind == "flow":
			// Every flow item shares the first one's delete.
			if !flowDone {
				flowErr, flowDone = it.do(ctx), true
			}
			err = flowErr
		default:
			err = it.do(ctx)
		}
		if err != nil {
			fmt.Fprintf(out, "could not remove %s %s: %v\n", it.kind, it.desc, err)
			failures = append(failures, it.kind+" "+strings.TrimSpace(it.desc))
			continue
		}
		if it.kind == "flow" {
			fmt.Fprintf(out, "%s flow%s\n", verb, it.desc)
		} else {
			fmt.Fprintf(out, "%s %s %s\n", verb, it.kind, it.desc)
		}
		if counts[it.kind] == 0 {
			order = append(order, it.kind)
		}
		counts[it.kind]++
		klog.V(2).InfoS("Cleanup", "dryRun", opts.DryRun, "kind", it.kind, "what", it.desc)
	}
	for _, k := range kept {
		fmt.Fprintf(out, "%s\n", k)
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, plural(counts[k], k))
	}
	switch {
	case len(parts) == 0 && len(failures) == 0:
		fmt.Fprintf(out, "nothing to remove: no route with protocol %d, no flow of noderoute-agent in tables %s of bridge %s\n",
			route.Protocol, tableList(), opts.Config.OVSBridge)
	case len(parts) > 0:
		fmt.Fprintf(out, "%s %s\n", verb, strings.Join(parts, ", "))
	}
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintf(out, "FAILED: %s\n", f)
		}
		return fmt.Errorf("%w: %d failure(s)", ErrIncomplete, len(failures))
	}
	return nil
}

func plural(n int, kind string) string {
	switch {
	case kind == "external_ids":
		return "noderoute's external_ids keys"
	case n == 1:
		return "1 " + kind
	case kind == "address":
		return fmt.Sprintf("%d addresses", n)
	default:
		return fmt.Sprintf("%d %ss", n, kind)
	}
}

func tableList() string {
	var s []string
	for _, t := range openflow.Tables() {
		s = append(s, fmt.Sprint(t))
	}
	return strings.Join(s, ", ")
}
