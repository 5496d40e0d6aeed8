// Package openflow programs the ARP responder pipeline of the integration
// bridge over OpenFlow 1.3. It is the only package that imports the OpenFlow
// libraries (libOpenflow, ofnet), so that replacing them stays local.
package openflow

import "net"

// Table IDs of the pipeline.
const (
	// ClassifierTable is where every packet starts: ARP goes to
	// ArpResponderTable, everything else to NORMAL.
	ClassifierTable uint8 = 0
	// ArpResponderTable answers ARP requests for remote Nodes' gateway IPs.
	ArpResponderTable uint8 = 20
)

// Priorities of the ArpResponderTable flows, as in the seed.
const (
	PriorityArpResponder uint16 = 200
	PriorityArpNormal    uint16 = 190
	PriorityMiss         uint16 = 0
	// PriorityClassifierArp sends ARP from table 0 to table 20.
	PriorityClassifierArp uint16 = 200
)

// Client installs and removes the agent's flows. Implementations remember
// what they installed, so every call is idempotent and sends only the
// difference, in one OpenFlow bundle per call.
type Client interface {
	// Initialize connects to the bridge and installs the base flows with
	// the cookie round given. It may be called again after a reconnect.
	Initialize(round uint16) error
	// InstallNodeFlows makes the ARP responder flows for remote Node
	// nodeName answer exactly the given gateway IPs: new ones are added,
	// ones no longer listed are removed. IPv6 addresses are ignored until
	// the NDP responder exists.
	InstallNodeFlows(nodeName string, gateways []net.IP) error
	// UninstallNodeFlows removes every flow of remote Node nodeName.
	UninstallNodeFlows(nodeName string) error
	// DeleteStaleFlows removes the agent's flows whose cookie round is not
	// the current one: what an earlier agent installed and no Node wants
	// any more. Call it after the first full sync.
	DeleteStaleFlows() error
	// Disconnect closes the OpenFlow connection.
	Disconnect()
}
