package ovsconfig

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// What `noderoute-agent cleanup` reads and removes in OVSDB. Only rows the
// agent created (OwnerExternalID) are deleted; on rows it did not create
// only its own external_ids keys are removed.

// agentKeys are the external_ids keys the agent writes.
var agentKeys = []string{OwnerExternalID, RoundExternalID, GatewayAddressesExternalID}

// BridgeState is the bridge and its gateway port as cleanup sees them.
type BridgeState struct {
	// Exists is false when there is no bridge of that name; the other
	// fields are then zero.
	Exists bool
	// Owned says the agent created the bridge.
	Owned bool
	// AgentKeys are the agent's external_ids keys on the bridge.
	AgentKeys []string
	// OtherPorts are the bridge's ports other than the gateway port,
	// sorted.
	OtherPorts []string
	// Gateway is the gateway port, nil when the bridge has none of that
	// name.
	Gateway *PortState
}

// PortState is the gateway port as cleanup sees it.
type PortState struct {
	Name string
	// Owned says the agent created the port.
	Owned bool
	// AgentKeys are the agent's external_ids keys on the port.
	AgentKeys []string
	// Addresses are the gateway addresses the agent recorded
	// (GatewayAddressesExternalID), e.g. "10.222.1.1/24".
	Addresses []string
}

// InspectBridge reads the bridge and its gateway port.
func (c *Client) InspectBridge(ctx context.Context, bridge, gatewayPort string) (BridgeState, error) {
	br, err := c.getBridge(ctx, bridge)
	if err != nil || br == nil {
		return BridgeState{}, err
	}
	st := BridgeState{Exists: true, Owned: br.ExternalIDs[OwnerExternalID] == OwnerAgent, AgentKeys: presentKeys(br.ExternalIDs)}
	ports, err := selectRows[portRow](ctx, c, tablePort)
	if err != nil {
		return BridgeState{}, err
	}
	for _, p := range ports {
		if !slices.Contains(br.Ports, p.UUID) {
			continue
		}
		if p.Name != gatewayPort {
			st.OtherPorts = append(st.OtherPorts, p.Name)
			continue
		}
		st.Gateway = &PortState{
			Name:      p.Name,
			Owned:     p.ExternalIDs[OwnerExternalID] == OwnerAgent,
			AgentKeys: presentKeys(p.ExternalIDs),
		}
		if v := p.ExternalIDs[GatewayAddressesExternalID]; v != "" {
			st.Gateway.Addresses = strings.Split(v, ",")
		}
	}
	slices.Sort(st.OtherPorts)
	return st, nil
}

func presentKeys(ids map[string]string) []string {
	var out []string
	for _, k := range agentKeys {
		if _, ok := ids[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// DeleteBridge removes the bridge from the database; its ports and
// interfaces go with it (OVSDB garbage-collects rows nothing references).
// A bridge that is already gone is not an error.
func (c *Client) DeleteBridge(ctx context.Context, bridge string) error {
	br, err := c.getBridge(ctx, bridge)
	if err != nil || br == nil {
		return err
	}
	roots, err := selectRows[ovsRoot](ctx, c, tableOpenvSwitch)
	if err != nil {
		return err
	}
	var ops []ovsdb.Operation
	for _, r := range roots {
		root := &ovsRoot{UUID: r.UUID}
		o, err := c.ovs.Where(root).Mutate(root, model.Mutation{
			Field: &root.Bridges, Mutator: ovsdb.MutateOperationDelete, Value: []string{br.UUID},
		})
		if err != nil {
			return fmt.Errorf("building removal of bridge %s: %w", bridge, err)
		}
		ops = append(ops, o...)
	}
	if _, err := c.transact(ctx, ops); err != nil {
		return fmt.Errorf("delete bridge %s: %w", bridge, err)
	}
	return nil
}

// DeletePort removes the port from the bridge (and so from the database).
// A port that is already gone is not an error.
func (c *Client) DeletePort(ctx context.Context, bridge, port string) error {
	br, err := c.getBridge(ctx, bridge)
	if err != nil || br == nil {
		return err
	}
	ports, err := selectRows[portRow](ctx, c, tablePort, ovsdb.NewCondition("name", ovsdb.ConditionEqual, port))
	if err != nil {
		return err
	}
	if len(ports) == 0 || !slices.Contains(br.Ports, ports[0].UUID) {
		return nil
	}
	row := &bridgeRow{UUID: br.UUID}
	ops, err := c.ovs.Where(row).Mutate(row, model.Mutation{
		Field: &row.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{ports[0].UUID},
	})
	if err != nil {
		return fmt.Errorf("building removal of port %s from bridge %s: %w", port, bridge, err)
	}
	if _, err := c.transact(ctx, ops); err != nil {
		return fmt.Errorf("delete port %s of bridge %s: %w", port, bridge, err)
	}
	return nil
}

// ForgetAgentKeys removes the agent's external_ids keys from the bridge and
// from the port (when it exists), leaving every other key alone.
func (c *Client) ForgetAgentKeys(ctx context.Context, bridge, port string) error {
	var ops []ovsdb.Operation
	br, err := c.getBridge(ctx, bridge)
	if err != nil {
		return err
	}
	if br != nil {
		row := &bridgeRow{UUID: br.UUID}
		o, err := c.ovs.Where(row).Mutate(row, model.Mutation{
			Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: agentKeys,
		})
		if err != nil {
			return fmt.Errorf("building removal of external_ids of bridge %s: %w", bridge, err)
		}
		ops = append(ops, o...)
	}
	ports, err := selectRows[portRow](ctx, c, tablePort, ovsdb.NewCondition("name", ovsdb.ConditionEqual, port))
	if err != nil {
		return err
	}
	if len(ports) > 0 {
		row := &portRow{UUID: ports[0].UUID}
		o, err := c.ovs.Where(row).Mutate(row, model.Mutation{
			Field: &row.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: agentKeys,
		})
		if err != nil {
			return fmt.Errorf("building removal of external_ids of port %s: %w", port, err)
		}
		ops = append(ops, o...)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := c.transact(ctx, ops); err != nil {
		return fmt.Errorf("remove noderoute's external_ids from bridge %s and port %s: %w", bridge, port, err)
	}
	return nil
}
