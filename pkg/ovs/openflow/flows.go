package openflow

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

const (
	etherTypeARP   = 0x0806
	arpOpRequest   = 1
	arpOpReply     = 2
	bitsMAC        = 48
	bitsIPv4       = 32
	bitsARPOp      = 16
	nxmEthSrc      = "NXM_OF_ETH_SRC"
	nxmEthDst      = "NXM_OF_ETH_DST"
	nxmArpOp       = "NXM_OF_ARP_OP"
	nxmArpSha      = "NXM_NX_ARP_SHA"
	nxmArpTha      = "NXM_NX_ARP_THA"
	nxmArpSpa      = "NXM_OF_ARP_SPA"
	nxmArpTpa      = "NXM_OF_ARP_TPA"
	noCookieFilter = 0
)

// pipeline builds the agent's flow messages for one round.
type pipeline struct {
	round      uint16
	virtualMAC net.HardwareAddr
}

func (p pipeline) cookie(c Category) uint64 {
	return Cookie{Round: p.round, Category: c}.Uint64()
}

// baseFlows returns table 0's dispatch flows and table 20's fallback flows:
//
//	table=0,  priority=200,arp actions=goto_table:20
//	table=0,  priority=0 actions=NORMAL
//	table=20, priority=190,arp actions=NORMAL
//	table=20, priority=0 actions=drop
func (p pipeline) baseFlows() []*openflow13.FlowMod {
	cookie := p.cookie(CategoryPipeline)

	arpToResponder := newFlowMod(ClassifierTable, PriorityClassifierArp, cookie, openflow13.FC_ADD)
	arpToResponder.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	arpToResponder.AddInstruction(openflow13.NewInstrGotoTable(ArpResponderTable))

	classifierMiss := newFlowMod(ClassifierTable, PriorityMiss, cookie, openflow13.FC_ADD)
	classifierMiss.AddInstruction(applyActions(openflow13.NewActionOutput(openflow13.P_NORMAL)))

	arpNormal := newFlowMod(ArpResponderTable, PriorityArpNormal, cookie, openflow13.FC_ADD)
	arpNormal.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	arpNormal.AddInstruction(applyActions(openflow13.NewActionOutput(openflow13.P_NORMAL)))

	// No instruction at all is OpenFlow 1.3's drop.
	responderMiss := newFlowMod(ArpResponderTable, PriorityMiss, cookie, openflow13.FC_ADD)

	return []*openflow13.FlowMod{arpToResponder, classifierMiss, arpNormal, responderMiss}
}

// arpResponderFlow answers an ARP request for gateway (an IPv4 address) with
// the virtual MAC, turning the request into a reply in place and sending it
// back where it came from:
//
//	priority=200,arp,arp_tpa=<gw>,arp_op=1 actions=
//	  move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[], set eth_src to the virtual MAC,
//	  load:0x2->NXM_OF_ARP_OP[], move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],
//	  load:<vmac>->NXM_NX_ARP_SHA[], move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],
//	  load:<gw>->NXM_OF_ARP_SPA[], IN_PORT
func (p pipeline) arpResponderFlow(gateway net.IP) (*openflow13.FlowMod, error) {
	gw4 := gateway.To4()
	if gw4 == nil {
		return nil, fmt.Errorf("ARP responder needs an IPv4 gateway, got %s", gateway)
	}
	fm := arpResponderMatch(gw4, p.cookie(CategoryNodeRoute), openflow13.FC_ADD)

	mac := macToUint64(p.virtualMAC)
	actions := []openflow13.Action{
		move(nxmEthSrc, nxmEthDst, bitsMAC),
		openflow13.NewActionSetField(*openflow13.NewEthSrcField(p.virtualMAC, nil)),
		load(nxmArpOp, bitsARPOp, arpOpReply),
		move(nxmArpSha, nxmArpTha, bitsMAC),
		load(nxmArpSha, bitsMAC, mac),
		move(nxmArpSpa, nxmArpTpa, bitsIPv4),
		load(nxmArpSpa, bitsIPv4, uint64(binary.BigEndian.Uint32(gw4))),
		openflow13.NewActionOutput(openflow13.P_IN_PORT),
	}
	fm.AddInstruction(applyActions(actions...))
	return fm, nil
}

// deleteArpResponderFlow removes the responder flow of gateway, whatever its
// cookie round.
func deleteArpResponderFlow(gateway net.IP) *openflow13.FlowMod {
	return arpResponderMatch(gateway.To4(), noCookieFilter, openflow13.FC_DELETE_STRICT)
}

func arpResponderMatch(gw4 net.IP, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := newFlowMod(ArpResponderTable, PriorityArpResponder, cookie, command)
	fm.Match.AddField(*openflow13.NewEthTypeField(etherTypeARP))
	fm.Match.AddField(*openflow13.NewArpTpaField(gw4))
	fm.Match.AddField(*openflow13.NewArpOperField(arpOpRequest))
	return fm
}

// deleteByCookie removes every flow of table whose cookie matches value in
// the bits of mask.
func deleteByCookie(table uint8, value, mask uint64) *openflow13.FlowMod {
	fm := newFlowMod(table, 0, value, openflow13.FC_DELETE)
	fm.CookieMask = mask
	return fm
}

func newFlowMod(table uint8, priority uint16, cookie uint64, command uint8) *openflow13.FlowMod {
	fm := openflow13.NewFlowMod()
	fm.TableId = table
	fm.Priority = priority
	fm.Cookie = cookie
	// NewFlowMod leaves out_port and out_group at ANY, so deletes are not
	// restricted to an output.
	fm.Command = command
	return fm
}

func applyActions(actions ...openflow13.Action) *openflow13.InstrActions {
	instr := openflow13.NewInstrApplyActions()
	for _, a := range actions {
		// AddAction only fails for a nil action.
		_ = instr.AddAction(a, false)
	}
	return instr
}

func move(src, dst string, nBits uint16) openflow13.Action {
	return openflow13.NewNXActionRegMove(nBits, 0, 0, mustField(src), mustField(dst))
}

func load(dst string, nBits int, value uint64) openflow13.Action {
	return openflow13.NewNXActionRegLoad(openflow13.NewNXRange(0, nBits-1).ToOfsBits(), mustField(dst), value)
}

// mustField looks up an NXM field by name. The names are constants of this
// file, so a failure is a programming error caught by the unit tests.
func mustField(name string) *openflow13.MatchField {
	f, err := openflow13.FindFieldHeaderByName(name, false)
	if err != nil {
		panic(fmt.Sprintf("unknown NXM field %s: %v", name, err))
	}
	return f
}

func macToUint64(mac net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range mac {
		v = v<<8 | uint64(b)
	}
	return v
}
