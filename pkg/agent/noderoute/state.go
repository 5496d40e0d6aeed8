package noderoute

import (
	"sort"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
)

// snapshot is the controller's state as State and Stats read it. The worker
// publishes a new one after each batch, under c.mu and after the batch's
// data-plane calls, so a reader sees the state before or after a batch,
// never half of one, and never waits for OVS or netlink. It is not changed
// once published.
type snapshot struct {
	localSubnets []podSubnet
	// installed shares its slices with Controller.installed, which
	// replaces them rather than changing them.
	installed map[string][]podSubnet
	// counts are Stats without NodesSeen.
	counts Stats
}

// publish makes the current installed and localSubnets what State and Stats
// read. Callers hold c.mu.
func (c *Controller) publish() {
	s := &snapshot{localSubnets: c.localSubnets, installed: make(map[string][]podSubnet, len(c.installed))}
	s.counts.RemoteNodes = len(c.installed)
	for name, subnets := range c.installed {
		s.installed[name] = subnets
		s.counts.Routes += len(subnets)
		for _, sn := range subnets {
			if sn.Gateway.To4() != nil {
				s.counts.ArpResponderFlows++
			} else {
				s.counts.NdpResponderFlows++
			}
		}
	}
	c.published.Store(s)
}

// installedCounts returns how many remote Nodes and subnets are installed,
// as last published.
func (c *Controller) installedCounts() (nodes, subnets int) {
	counts := c.published.Load().counts
	return counts.RemoteNodes, counts.Routes
}

// Stats are the controller's counts, for gauges.
type Stats struct {
	// NodesSeen is the number of Node objects in the informer cache,
	// this node's own included.
	NodesSeen int
	// RemoteNodes is the number of remote Nodes with flows and routes
	// installed.
	RemoteNodes int
	// Routes is the number of routes installed (one per remote pod
	// CIDR, both address families).
	Routes int
	// ArpResponderFlows is the number of ARP responder flows installed
	// (one per remote IPv4 pod CIDR). The pipeline's base flows are not
	// counted.
	ArpResponderFlows int
	// NdpResponderFlows is the number of NDP responder flows installed
	// (one per remote IPv6 pod CIDR, in table 21). Base flows are not
	// counted.
	NdpResponderFlows int
}

// Stats returns the current counts. It does not wait for a batch in
// progress: the counts are those published after the last one.
func (c *Controller) Stats() Stats {
	s := c.published.Load().counts
	if nodes, err := c.lister.List(labels.Everything()); err == nil {
		s.NodesSeen = len(nodes)
	}
	return s
}

// State returns a snapshot of what the controller wants (computed from the
// Nodes in its cache against what it had installed after its last batch,
// without changing anything) and what it has installed, per remote Node,
// sorted by name. It does not wait for a batch in progress.
func (c *Controller) State() apiserver.ControllerState {
	nodes, _ := c.lister.List(labels.Everything())
	snap := c.published.Load()
	st := apiserver.ControllerState{LocalNode: c.localNode, LocalPodCIDRs: subnetKeys(snap.localSubnets)}
	select {
	case <-c.fullSyncDone:
		st.FullSyncDone = true
	default:
	}
	// Between batches the worker's claims are exactly what is installed.
	claims := newSubnetIndex()
	for name, subnets := range snap.installed {
		claims.set(name, subnets)
	}
	view := claimView{localNode: c.localNode, localSubnets: snap.localSubnets, claims: claims}
	byName := map[string]*apiserver.RemoteNodeState{}
	get := func(name string) *apiserver.RemoteNodeState {
		if byName[name] == nil {
			byName[name] = &apiserver.RemoteNodeState{Name: name, Desired: []apiserver.Subnet{}, Installed: []apiserver.Subnet{}}
		}
		return byName[name]
	}
	for _, node := range nodes {
		if node.Name == c.localNode {
			continue
		}
		ns := get(node.Name)
		want, ignored, _ := view.desiredSubnets(node)
		for _, sn := range want {
			ns.Desired = append(ns.Desired, apiSubnet(sn))
		}
		ns.Ignored = apiIgnored(ignored)
	}
	for name, subnets := range snap.installed {
		ns := get(name)
		for _, s := range subnets {
			ns.Installed = append(ns.Installed, apiSubnet(s))
		}
	}
	for _, ns := range byName {
		st.RemoteNodes = append(st.RemoteNodes, *ns)
	}
	sort.Slice(st.RemoteNodes, func(i, j int) bool { return st.RemoteNodes[i].Name < st.RemoteNodes[j].Name })
	return st
}

// apiSubnet converts a subnet to the local API's form.
func apiSubnet(s podSubnet) apiserver.Subnet {
	return apiserver.Subnet{PodCIDR: s.key(), GatewayIP: s.Gateway.String()}
}

// apiIgnored converts refused CIDRs to the local API's form; none stays nil
// (the field is omitted).
func apiIgnored(ignored []ignoredCIDR) []apiserver.IgnoredCIDR {
	if ignored == nil {
		return nil
	}
	out := make([]apiserver.IgnoredCIDR, len(ignored))
	for i, ig := range ignored {
		out[i] = apiserver.IgnoredCIDR{PodCIDR: ig.PodCIDR, Kind: ig.Kind, Reason: ig.Reason}
	}
	return out
}
