package openflow

import (
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

// The agent's pipeline, every flow described once as a flowSpec: the base
// flows here, the flows kept per remote gateway in gatewayflows.go. To add
// a table, name it (interface.go, tables.go) and describe its flows in one
// of the two; the messages, the flow check and its counts, and agentctl
// check all follow from the descriptions.

// pipeline builds the agent's flows for one round.
type pipeline struct {
	round      uint16
	virtualMAC net.HardwareAddr
}

func (p pipeline) cookie(c Category) uint64 {
	return Cookie{Round: p.round, Category: c}.Uint64()
}

// baseFlowSpecs returns table 0's dispatch flows, the fallback flows of
// tables 20 and 21 and table 22's flow:
//
//	table=0,  priority=200,arp actions=goto_table:20
//	table=0,  priority=200,icmp6,icmp_type=135 actions=goto_table:21
//	table=0,  priority=0 actions=NORMAL
//	table=20, priority=190,arp actions=NORMAL
//	table=20, priority=0 actions=drop
//	table=21, priority=190,icmp6,icmp_type=135 actions=NORMAL
//	table=21, priority=0 actions=drop
//	table=22, priority=200,icmp6,icmp_type=136 actions=<nd_tll := virtual MAC>,IN_PORT
//	table=22, priority=0 actions=drop
//
// IPv6 adds only the icmp6 dispatch and tables 21 and 22: table 20 keeps its
// two fallbacks and nothing else, so on the three-Node example cluster it is
// exactly testdata/seed-table20.txt (see docs/design.md).
func (p pipeline) baseFlowSpecs() []flowSpec {
	normal := []flowAction{output(openflow13.P_NORMAL)}
	specs := []flowSpec{
		{table: ClassifierTable, priority: PriorityClassifierArp, match: []matchTerm{matchARP()}, next: ArpResponderTable},
		{table: ClassifierTable, priority: PriorityClassifierNdp, match: []matchTerm{matchICMPv6(icmpv6TypeNS)}, next: NdpResponderTable},
		{table: ClassifierTable, priority: PriorityMiss, actions: normal},

		{table: ArpResponderTable, priority: PriorityArpNormal, match: []matchTerm{matchARP()}, actions: normal},
		{table: ArpResponderTable, priority: PriorityMiss},

		// A solicitation for an address that is not a remote gateway
		// (another host on the bridge, duplicate address detection)
		// goes on as usual.
		{table: NdpResponderTable, priority: PriorityNdpNormal, match: []matchTerm{matchICMPv6(icmpv6TypeNS)}, actions: normal},
		{table: NdpResponderTable, priority: PriorityMiss},

		// Only table 21's responders send packets here: advertisements
		// they made out of solicitations.
		{table: NdpTllTable, priority: PriorityNdpTll, match: []matchTerm{matchICMPv6(icmpv6TypeNA)}, actions: []flowAction{
			load(nxmNdTll, bitsMAC, macToUint64(p.virtualMAC)),
			output(openflow13.P_IN_PORT),
		}},
		{table: NdpTllTable, priority: PriorityMiss},
	}
	for i := range specs {
		specs[i].cookie = p.cookie(CategoryPipeline)
	}
	return specs
}

// baseFlows returns the messages that add the base flows.
func (p pipeline) baseFlows() []*openflow13.FlowMod {
	specs := p.baseFlowSpecs()
	mods := make([]*openflow13.FlowMod, len(specs))
	for i, s := range specs {
		mods[i] = s.addMessage()
	}
	return mods
}
