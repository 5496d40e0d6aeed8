// Package apiserver is the agent's local API: a small HTTP server on a unix
// socket (root only) that tells agentctl what the agent wants and has, and
// the client agentctl uses.
//
// The wire types of the local API (State and the per-Node types it holds)
// live here, next to APIVersion that versions their shape: the JSON that
// agentctl reads is defined in one place, and the controller converts its
// own state into them (noderoute.Controller.State).
package apiserver

// DefaultSocket is where the agent serves its local API unless told
// otherwise (--api-socket).
const DefaultSocket = "/var/run/noderoute/agent.sock"

// APIVersion is the version of State's shape; a breaking change gets a new
// path.
const APIVersion = "v1"

// StatePath is the path that serves State as JSON.
const StatePath = "/v1/state"

// State is what the agent tells agentctl: where its bridge is, what cookie
// round its flows carry, and per remote Node what it wants and has.
type State struct {
	APIVersion   string `json:"apiVersion"`
	AgentVersion string `json:"agentVersion"`
	// NodeName is the Node the agent runs on.
	NodeName string `json:"nodeName"`
	// LocalPodCIDRs are this node's own pod CIDRs.
	LocalPodCIDRs []string `json:"localPodCIDRs"`
	// Bridge is the OVS integration bridge.
	Bridge string `json:"bridge"`
	// OVSRunDir holds the bridge's OpenFlow socket, <dir>/<bridge>.mgmt.
	OVSRunDir string `json:"ovsRunDir"`
	// GatewayInterface carries the routes.
	GatewayInterface string `json:"gatewayInterface"`
	// VirtualMAC answers ARP for remote gateways.
	VirtualMAC string `json:"virtualMAC"`
	// FlowRound is the cookie round of the agent's current flows (the
	// top 16 bits of their cookies).
	FlowRound uint16 `json:"flowRound"`
	// OVSConnected is true while the OpenFlow connection is up.
	OVSConnected bool `json:"ovsConnected"`
	// FullSyncDone is true once the first full sync is over; before
	// that, flows of earlier rounds and stale routes may still be there.
	FullSyncDone bool `json:"fullSyncDone"`
	// RemoteNodes are the other Nodes, sorted by name.
	RemoteNodes []RemoteNodeState `json:"remoteNodes"`
}

// RemoteNode returns the remote Node called name, or nil.
func (s *State) RemoteNode(name string) *RemoteNodeState {
	for i := range s.RemoteNodes {
		if s.RemoteNodes[i].Name == name {
			return &s.RemoteNodes[i]
		}
	}
	return nil
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
	// Kind is one of noderoute.RejectKinds.
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

// ControllerState is the controller's part of State, a read-only snapshot.
type ControllerState struct {
	LocalNode     string
	LocalPodCIDRs []string
	FullSyncDone  bool
	// RemoteNodes are sorted by name.
	RemoteNodes []RemoteNodeState
}

// StateSource is what Agent reads the controller's part of State from;
// *noderoute.Controller implements it.
type StateSource interface {
	State() ControllerState
}

// Agent gathers what State reports about a running agent.
type Agent struct {
	NodeName         string
	Version          string
	Bridge           string
	OVSRunDir        string
	GatewayInterface string
	VirtualMAC       string
	FlowRound        uint16
	// OVSConnected reports whether the OpenFlow connection is up; nil
	// reads as false.
	OVSConnected func() bool
	Controller   StateSource
}

// State returns the agent's current State.
func (a *Agent) State() State {
	cs := a.Controller.State()
	st := State{
		APIVersion:       APIVersion,
		AgentVersion:     a.Version,
		NodeName:         a.NodeName,
		LocalPodCIDRs:    cs.LocalPodCIDRs,
		Bridge:           a.Bridge,
		OVSRunDir:        a.OVSRunDir,
		GatewayInterface: a.GatewayInterface,
		VirtualMAC:       a.VirtualMAC,
		FlowRound:        a.FlowRound,
		OVSConnected:     a.OVSConnected != nil && a.OVSConnected(),
		FullSyncDone:     cs.FullSyncDone,
		RemoteNodes:      cs.RemoteNodes,
	}
	if st.LocalPodCIDRs == nil {
		st.LocalPodCIDRs = []string{}
	}
	if st.RemoteNodes == nil {
		st.RemoteNodes = []RemoteNodeState{}
	}
	return st
}
