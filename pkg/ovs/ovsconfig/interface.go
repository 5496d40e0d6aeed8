// Package ovsconfig sets up the integration bridge and its gateway port
// through OVSDB, and keeps the agent's flow round in the bridge's
// external_ids.
package ovsconfig

import "context"

// DatapathType is the bridge's datapath_type.
type DatapathType string

const (
	// DatapathSystem is the kernel datapath (openvswitch module).
	DatapathSystem DatapathType = "system"
	// DatapathNetdev is the userspace datapath, for hosts without the
	// kernel module.
	DatapathNetdev DatapathType = "netdev"
)

// RoundExternalID is the bridge external_ids key that holds the last flow
// round an agent started with.
const RoundExternalID = "noderoute-flow-round"

// BridgeConfig describes the bridge the agent needs.
type BridgeConfig struct {
	Name         string
	DatapathType DatapathType
	// GatewayPort is the name of the internal port (and kernel interface)
	// that connects the host to the bridge, e.g. antrea-gw0.
	GatewayPort string
	// FlowRound, when not 0, is written to the bridge's external_ids
	// (RoundExternalID) if they have no round: a bridge re-created while
	// the agent runs (deleted by hand, or a fresh database) would
	// otherwise make the next agent start at round 1 again, possibly the
	// running one's round, and its stale-flow clean-up would then spare
	// this agent's leftovers. A round already stored is never changed
	// here; that is NextFlowRound's job.
	FlowRound uint16
}

// Interface is what the agent needs from OVSDB.
type Interface interface {
	// EnsureBridge creates the bridge (protocols OpenFlow10 and
	// OpenFlow13, fail_mode secure, the given datapath type) and its
	// internal gateway port, or corrects them if they exist. Idempotent.
	EnsureBridge(ctx context.Context, cfg BridgeConfig) error
	// NextFlowRound reads the round stored on the bridge, stores and
	// returns the next one (1 on a bridge that has none).
	NextFlowRound(ctx context.Context, bridge string) (uint16, error)
	// Close closes the OVSDB connection.
	Close()
}
