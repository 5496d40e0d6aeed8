package openflow

import (
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

// responderFlow returns the message that adds the responder of gateway:
// the ARP responder for an IPv4 address, the NDP responder for an IPv6
// one.
func (p pipeline) responderFlow(gateway net.IP) (*openflow13.FlowMod, error) {
	s, err := responderKind(gateway).spec(p, gateway)
	if err != nil {
		return nil, err
	}
	return s.addMessage(), nil
}

// responderMatch returns the responder flow of gateway without its
// actions: what the flow check builds to list the flows it wants.
func (p pipeline) responderMatch(gateway net.IP) *openflow13.FlowMod {
	s := responderKind(gateway).matchSpec(p, gateway)
	return s.addMessage()
}

// wantedBase returns base flow i as the flow check lists it.
func wantedBase(p pipeline, i int) WantedFlow {
	return WantedFlows(p.round, p.virtualMAC, nil)[i]
}

// wantedGateway returns the one flow of gateway gw (its responder) as the
// flow check lists it.
func wantedGateway(p pipeline, gw string) WantedFlow {
	all := WantedFlows(p.round, p.virtualMAC, []net.IP{net.ParseIP(gw)})
	return all[len(all)-1]
}
