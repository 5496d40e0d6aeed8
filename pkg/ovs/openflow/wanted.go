package openflow

import (
	"iter"
	"net"
	"slices"
)

// The flows the agent wants on the bridge, listed once for everything that
// compares the bridge with them: the client's flow check (flowcheck.go) and
// its flow counts (flowcount.go), and agentctl check.

// WantedFlow is one flow the agent keeps on the bridge: a base flow of the
// pipeline, or a flow it keeps for a remote Node's gateway. It is cheap to
// hold: the flow itself is built when asked for (Text, spec).
type WantedFlow struct {
	// Gateway is the remote gateway the flow serves, in the form of its
	// family; nil for a base flow.
	Gateway net.IP
	pipe    pipeline
	table   uint8
	// base is the flow's index in baseFlowSpecs when Gateway is nil.
	base int
	// kind is the flow's kind when Gateway is set.
	kind *gatewayFlowKind
}

// WantedFlows returns every flow the agent keeps on the bridge in round
// when it answers for gateways: the base flows, then, per gateway in the
// order given, one flow of each kind of its family (an ARP responder for
// IPv4, an NDP responder for IPv6).
func WantedFlows(round uint16, virtualMAC net.HardwareAddr, gateways []net.IP) []WantedFlow {
	p := pipeline{round: round, virtualMAC: virtualMAC}
	return slices.Collect(p.wantedFlows(slices.Values(gateways)))
}

// wantedFlows is WantedFlows for the pipeline's round and virtual MAC.
func (p pipeline) wantedFlows(gateways iter.Seq[net.IP]) iter.Seq[WantedFlow] {
	return func(yield func(WantedFlow) bool) {
		for i, s := range p.baseFlowSpecs() {
			if !yield(WantedFlow{pipe: p, table: s.table, base: i}) {
				return
			}
		}
		for gw := range gateways {
			for _, k := range kindsOf(gw) {
				if !yield(WantedFlow{Gateway: familyForm(gw), pipe: p, table: k.table, kind: k}) {
					return
				}
			}
		}
	}
}

// Table returns the table the flow is in.
func (w WantedFlow) Table() uint8 { return w.table }

// Text returns the flow as `ovs-ofctl dump-flows --no-stats` prints it.
func (w WantedFlow) Text() FlowText { return w.spec().text() }

// spec returns the whole flow.
func (w WantedFlow) spec() flowSpec {
	if w.kind == nil {
		return w.pipe.baseFlowSpecs()[w.base]
	}
	// wantedFlows only pairs a gateway with kinds of its family.
	s, _ := w.kind.spec(w.pipe, w.Gateway)
	return s
}

// id returns the flow's ID in a dump, built from its match alone.
func (w WantedFlow) id() (flowID, error) {
	if w.kind == nil {
		return w.spec().id()
	}
	return w.kind.matchSpec(w.pipe, w.Gateway).id()
}

// countByTable returns, per table of Tables(), how many of wanted it
// holds.
func countByTable(wanted iter.Seq[WantedFlow]) map[uint8]uint32 {
	counts := map[uint8]uint32{}
	for _, table := range Tables() {
		counts[table] = 0
	}
	for w := range wanted {
		counts[w.table]++
	}
	return counts
}
