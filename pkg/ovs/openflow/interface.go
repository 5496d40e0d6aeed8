// Package openflow programs the ARP and NDP responder pipeline of the
// integration bridge over OpenFlow 1.3. It is the only package that imports the OpenFlow
// libraries (libOpenflow, ofnet), so that replacing them stays local.
package openflow

import "net"

// Table IDs of the pipeline.
const (
	// ClassifierTable is where every packet starts: ARP goes to
	// ArpResponderTable, ICMPv6 Neighbor Solicitations to
	// NdpResponderTable, everything else to NORMAL.
	ClassifierTable uint8 = 0
	// ArpResponderTable answers ARP requests for remote Nodes' IPv4
	// gateway IPs.
	ArpResponderTable uint8 = 20
	// NdpResponderTable answers Neighbor Solicitations for remote Nodes'
	// IPv6 gateway IPs: it rewrites the solicitation into an advertisement
	// from the gateway and hands it to NdpTllTable. A table of its own
	// (not table 20) so that table 20 holds ARP flows only, exactly as in
	// testdata/seed-table20.txt.
	NdpResponderTable uint8 = 21
	// NdpTllTable writes the virtual MAC into the advertisement's target
	// link-layer address option and sends it back IN_PORT. It is a second
	// stage because OVS accepts a write to nd_tll only in a flow whose
	// match is an advertisement (icmp_type=136), and table 21's flows
	// match the solicitation.
	NdpTllTable uint8 = 22
)

// Priorities of the ArpResponderTable flows, as ovs-ofctl shows them in
// testdata/seed-table20.txt.
const (
	PriorityArpResponder uint16 = 200
	PriorityArpNormal    uint16 = 190
	PriorityMiss         uint16 = 0
	// PriorityClassifierArp sends ARP from table 0 to table 20.
	PriorityClassifierArp uint16 = 200
	// PriorityClassifierNdp sends Neighbor Solicitations from table 0 to
	// table 21.
	PriorityClassifierNdp uint16 = 200
	// PriorityNdpResponder and PriorityNdpNormal are table 21's per-gateway
	// responders and its fallback, as for ARP in table 20.
	PriorityNdpResponder uint16 = 200
	PriorityNdpNormal    uint16 = 190
	// PriorityNdpTll is table 22's one flow.
	PriorityNdpTll uint16 = 200
)

// Client installs and removes the agent's flows. Implementations remember
// what they installed, so every call is idempotent and sends only the
// difference, in one OpenFlow bundle per call.
type Client interface {
	// Initialize connects to the bridge and installs the base flows with
	// the cookie round given. It may be called again after a reconnect.
	Initialize(round uint16) error
	// InstallNodeFlows makes the responder flows for remote Node nodeName
	// answer exactly the given gateway IPs: an ARP responder for each IPv4
	// address, an NDP responder for each IPv6 one. New ones are added,
	// ones no longer listed are removed.
	InstallNodeFlows(nodeName string, gateways []net.IP) error
	// InstallFlows does what InstallNodeFlows does for every Node in
	// nodes (name -> gateway IPs), in as few bundles as possible: the
	// full sync of thousands of Nodes costs a few round trips, not
	// thousands. Nodes not in the map are left alone.
	InstallFlows(nodes map[string][]net.IP) error
	// UninstallNodeFlows removes every flow of remote Node nodeName.
	UninstallNodeFlows(nodeName string) error
	// DeleteStaleFlows removes the agent's flows whose cookie round is not
	// the current one: what an earlier agent installed and no Node wants
	// any more. Call it after the first full sync.
	DeleteStaleFlows() error
	// Disconnect closes the OpenFlow connection.
	Disconnect()
}
