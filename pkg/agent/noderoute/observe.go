package noderoute

import (
	"errors"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// SyncType names what a sync covered, for metrics.
type SyncType string

const (
	// SyncNode is one Node's sync (syncNode), from the queue or from a
	// full sync.
	SyncNode SyncType = "node"
	// SyncFull is one attempt at the first full sync: every Node, then
	// the clean-up of what earlier runs left.
	SyncFull SyncType = "full"
	// SyncResync is the periodic pass (every resync period) that compares
	// our routes in the kernel with what the Nodes want and repairs them.
	SyncResync SyncType = "resync"
	// SyncRepair is a route reconcile on request (RequestRouteReconcile:
	// the route watcher saw a route of ours deleted or replaced, or the
	// bridge monitor re-created the gateway interface).
	SyncRepair SyncType = "repair"
)

// Kinds of sync errors, as ErrorKind returns them.
const (
	// ErrorKindFlows: OVS refused a flow change or was not reachable.
	ErrorKindFlows = "flows"
	// ErrorKindRoutes: a netlink route call failed.
	ErrorKindRoutes = "routes"
	// ErrorKindNodeCache: the Node could not be read from the informer
	// cache.
	ErrorKindNodeCache = "node_cache"
	// ErrorKindPartial: a full sync attempt in which some Nodes failed
	// (each of those is counted as a SyncNode error of its own kind).
	ErrorKindPartial = "partial"
	// ErrorKindOther is anything else.
	ErrorKindOther = "other"
)

// ErrorKinds lists every kind ErrorKind returns for a non-nil error.
var ErrorKinds = []string{ErrorKindFlows, ErrorKindRoutes, ErrorKindNodeCache, ErrorKindPartial, ErrorKindOther}

// syncError tags an error with its kind; its message is the wrapped one's.
type syncError struct {
	kind string
	err  error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

func kindError(kind string, err error) error {
	if err == nil {
		return nil
	}
	return &syncError{kind: kind, err: err}
}

// ErrorKind classifies an error returned by a sync: "" for nil, else one of
// ErrorKinds.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var se *syncError
	if errors.As(err, &se) {
		return se.kind
	}
	return ErrorKindOther
}

// Observer receives the controller's measurements; the agent's metrics
// implement it. Calls come from the controller's goroutines and must not
// block.
type Observer interface {
	// ObserveSync reports one sync of the given type, how long it took
	// and how it ended.
	ObserveSync(sync SyncType, duration time.Duration, err error)
}

// SetObserver installs o. Call it before Run.
func (c *Controller) SetObserver(o Observer) { c.observer = o }

func (c *Controller) observe(sync SyncType, start time.Time, err error) {
	if c.observer != nil {
		c.observer.ObserveSync(sync, time.Since(start), err)
	}
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

// Stats returns the current counts.
func (c *Controller) Stats() Stats {
	var s Stats
	if nodes, err := c.lister.List(labels.Everything()); err == nil {
		s.NodesSeen = len(nodes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.RemoteNodes = len(c.installed)
	for _, subnets := range c.installed {
		s.Routes += len(subnets)
		for _, sn := range subnets {
			if sn.Gateway.To4() != nil {
				s.ArpResponderFlows++
			} else {
				s.NdpResponderFlows++
			}
		}
	}
	return s
}

// Subnet is a remote pod CIDR and the gateway IP its route goes through and
// its ARP (IPv4) or NDP (IPv6) responder answers for.
type Subnet struct {
	PodCIDR   string `json:"podCIDR"`
	GatewayIP string `json:"gatewayIP"`
}

// IgnoredCIDR is a pod CIDR of a Node object that the agent does not
// program, and why.
type IgnoredCIDR struct {
	PodCIDR string `json:"podCIDR"`
	// Kind is one of RejectKinds.
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// RemoteNodeState is what the controller wants and has for one remote Node.
type RemoteNodeState struct {
	Name string `json:"name"`
	// Desired are the subnets the Node object asks for, as the
	// controller computes them: usable CIDRs that overlap neither this
	// node's nor another remote Node's installed ones.
	Desired []Subnet `json:"desired"`
	// Installed are the subnets whose flows and routes the controller
	// has put in place. It differs from Desired while a sync is pending
	// or failing.
	Installed []Subnet `json:"installed"`
	// Ignored are the Node's pod CIDRs left out of Desired.
	Ignored []IgnoredCIDR `json:"ignored,omitempty"`
}

// State is a read-only snapshot of the controller.
type State struct {
	LocalNode     string            `json:"localNode"`
	LocalPodCIDRs []string          `json:"localPodCIDRs"`
	FullSyncDone  bool              `json:"fullSyncDone"`
	RemoteNodes   []RemoteNodeState `json:"remoteNodes"`
}

// State returns a snapshot of what the controller wants (computed from the
// Nodes in its cache, without changing anything) and what it has installed,
// per remote Node, sorted by name.
func (c *Controller) State() State {
	nodes, _ := c.lister.List(labels.Everything())
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{LocalNode: c.localNode, LocalPodCIDRs: subnetKeys(c.localSubnets)}
	select {
	case <-c.fullSyncDone:
		st.FullSyncDone = true
	default:
	}
	byName := map[string]*RemoteNodeState{}
	get := func(name string) *RemoteNodeState {
		if byName[name] == nil {
			byName[name] = &RemoteNodeState{Name: name, Desired: []Subnet{}, Installed: []Subnet{}}
		}
		return byName[name]
	}
	for _, node := range nodes {
		if node.Name == c.localNode {
			continue
		}
		ns := get(node.Name)
		want, ignored, _ := c.desiredSubnets(node)
		for _, sn := range want {
			ns.Desired = append(ns.Desired, textSubnet(sn))
		}
		ns.Ignored = ignored
	}
	for name, subnets := range c.installed {
		ns := get(name)
		for _, s := range subnets {
			ns.Installed = append(ns.Installed, textSubnet(s))
		}
	}
	for _, ns := range byName {
		st.RemoteNodes = append(st.RemoteNodes, *ns)
	}
	sort.Slice(st.RemoteNodes, func(i, j int) bool { return st.RemoteNodes[i].Name < st.RemoteNodes[j].Name })
	return st
}

func textSubnet(s podSubnet) Subnet {
	return Subnet{PodCIDR: s.key(), GatewayIP: s.Gateway.String()}
}
