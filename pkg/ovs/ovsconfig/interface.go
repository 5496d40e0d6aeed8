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

// OwnerExternalID is the external_ids key the agent sets, to OwnerAgent, on
// the bridge and the gateway port it creates (never on ones that existed
// before). `noderoute-agent cleanup` deletes a bridge or port only when it
// carries it: one an operator made stays. Bridges and ports created before
// the key existed count as the operator's.
const OwnerExternalID = "noderoute-owner"

// OwnerAgent is OwnerExternalID's value.
const OwnerAgent = "noderoute-agent"

// GatewayAddressesExternalID is the gateway port's external_ids key listing
// the addresses the agent gave the gateway interface (comma-separated, with
// prefix length), so that cleanup can take exactly those off an interface
// it did not create.
const GatewayAddressesExternalID = "noderoute-gateway-addresses"

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
	// RecordGatewayAddresses stores addrs (e.g. "10.222.1.1/24") in the
	// gateway port's external_ids (GatewayAddressesExternalID), replacing
	// what was there; other keys are left alone.
	RecordGatewayAddresses(ctx context.Context, gatewayPort string, addrs []string) error
	// NextFlowRound reads the round stored on the bridge, stores and
	// returns the next one (1 on a bridge that has none).
	NextFlowRound(ctx context.Context, bridge string) (uint16, error)
	// Close closes the OVSDB connection.
	Close()
}
