package openflow

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/contiv/libOpenflow/openflow13"
)

// testGateways are gateways of both families, with unusual text forms and
// halves among the IPv6 ones.
var testGateways = []string{"10.222.2.1", "10.222.0.1", "fd00:10:222:2::1", "::1:0:0:1", "2001:db8:0:0:1::1"}

// TestRenderersAgree: for every flow of the pipeline (the base flows and
// every gateway flow kind), the message the client sends, printed the way
// ovs-ofctl prints a flow, is the text agentctl check expects. The message
// is read as built, not parsed back from its encoding: libOpenflow's parser
// loses the address of a set_field of eth_src (EthSrcField copies into a
// nil slice). TestFlowIDSurvivesTheWire covers the encoding of the
// matches, and the real-bridge tests check the text against ovs-ofctl
// itself.
func TestRenderersAgree(t *testing.T) {
	p := testPipeline()
	specs := p.baseFlowSpecs()
	kinds := map[*gatewayFlowKind]bool{}
	for _, gw := range testGateways {
		for _, k := range kindsOf(net.ParseIP(gw)) {
			s, err := k.spec(p, net.ParseIP(gw))
			if err != nil {
				t.Fatal(err)
			}
			specs = append(specs, s)
			kinds[k] = true
		}
	}
	for _, k := range gatewayFlowKinds {
		if !kinds[k] {
			t.Errorf("no test gateway of the %s's family (IPv%d)", k.name, k.family)
		}
	}
	for _, s := range specs {
		want := s.text().String()
		fm := s.addMessage()
		if _, err := fm.MarshalBinary(); err != nil {
			t.Fatalf("%s: encode: %v", want, err)
		}
		got, err := formatFlowMod(fm)
		if err != nil {
			t.Errorf("%s: %v", want, err)
			continue
		}
		if got != want {
			t.Errorf("message prints as\n %s\ntext renderer says\n %s", got, want)
		}
	}
}

// The deletes remove exactly the flow added, whatever its cookie.
func TestDeleteMessageMatchesTheFlow(t *testing.T) {
	p := testPipeline()
	for _, gw := range testGateways {
		add, err := p.gatewayFlows(net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		del := deleteGatewayFlows(net.ParseIP(gw))
		if len(add) != len(del) || len(add) == 0 {
			t.Fatalf("%s: %d adds, %d deletes", gw, len(add), len(del))
		}
		for i := range add {
			a, d := add[i], del[i]
			if d.Command != openflow13.FC_DELETE_STRICT || d.Cookie != 0 || d.CookieMask != 0 || len(d.Instructions) != 0 {
				t.Errorf("%s: delete %+v", gw, d)
			}
			ida, _ := newFlowID(a.TableId, a.Priority, 0, a.Match)
			idd, _ := newFlowID(d.TableId, d.Priority, 0, d.Match)
			if ida != idd {
				t.Errorf("%s: delete selects %s, add is %s", gw, idd, ida)
			}
		}
	}
	if _, err := p.gatewayFlows(nil); err == nil {
		t.Error("flows for a nil gateway")
	}
}

// Each gateway flow kind names, for agentctl, the match field that holds
// the gateway, and its flows hold it there.
func TestGatewayMatchField(t *testing.T) {
	p := testPipeline()
	for _, gw := range testGateways {
		for _, k := range kindsOf(net.ParseIP(gw)) {
			field, ok := GatewayMatchField(k.category)
			s, _ := k.spec(p, net.ParseIP(gw))
			if !ok || !strings.Contains(","+s.text().Match+",", ","+field+"="+net.ParseIP(gw).String()+",") {
				t.Errorf("%s of %s: field %q (%t) not in %q", k.name, gw, field, ok, s.text().Match)
			}
		}
	}
	if _, ok := GatewayMatchField(CategoryPipeline); ok {
		t.Error("base flows have a gateway field")
	}
}

// The flow check's list and counts: the base flows, then one flow per
// gateway and kind of its family, counted by table.
func TestWantedFlowsAndCounts(t *testing.T) {
	p := testPipeline()
	var gws []net.IP
	for _, gw := range testGateways {
		gws = append(gws, net.ParseIP(gw))
	}
	wanted := WantedFlows(p.round, p.virtualMAC, gws)
	base := p.baseFlowSpecs()
	if len(wanted) != len(base)+len(gws) {
		t.Fatalf("%d wanted flows, want %d", len(wanted), len(base)+len(gws))
	}
	for i, w := range wanted {
		if i < len(base) && (w.Gateway != nil || w.Text() != base[i].text()) {
			t.Errorf("wanted flow %d: %s, want base flow %s", i, w.Text(), base[i].text())
		}
		if i >= len(base) && !w.Gateway.Equal(gws[i-len(base)]) {
			t.Errorf("wanted flow %d: gateway %s, want %s", i, w.Gateway, gws[i-len(base)])
		}
		if w.Table() != w.Text().Table {
			t.Errorf("wanted flow %d: table %d, its text says %d", i, w.Table(), w.Text().Table)
		}
	}
	counts := countByTable(p.wantedFlows(func(yield func(net.IP) bool) {
		for _, gw := range gws {
			if !yield(gw) {
				return
			}
		}
	}))
	want := map[uint8]uint32{ClassifierTable: 3, ArpResponderTable: 2 + 2, NdpResponderTable: 2 + 3, NdpTllTable: 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

// formatFlowMod prints fm as `ovs-ofctl dump-flows --no-stats` prints the
// flow, for the fields and actions the pipeline uses: an independent
// reading of the message, to hold the text renderer to.
func formatFlowMod(fm *openflow13.FlowMod) (string, error) {
	var match []string
	fields := fm.Match.Fields
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if f.Class != openflow13.OXM_CLASS_OPENFLOW_BASIC {
			return "", fmt.Errorf("match field class %#x", f.Class)
		}
		switch v := f.Value.(type) {
		case *openflow13.EthTypeField:
			switch {
			case v.EthType == etherTypeARP:
				match = append(match, "arp")
			case v.EthType == etherTypeIPv6 && i+1 < len(fields) && isIPProto(fields[i+1], ipProtoICMPv6):
				match = append(match, "icmp6")
				i++
			default:
				return "", fmt.Errorf("eth_type %#x", v.EthType)
			}
		case *openflow13.IcmpTypeField:
			match = append(match, fmt.Sprintf("icmp_type=%d", v.Type))
		case *openflow13.ArpXPaField:
			if f.Field != openflow13.OXM_FIELD_ARP_TPA {
				return "", fmt.Errorf("ARP field %d", f.Field)
			}
			match = append(match, "arp_tpa="+v.ArpPa.String())
		case *openflow13.ArpOperField:
			match = append(match, fmt.Sprintf("arp_op=%d", v.ArpOper))
		case *openflow13.Ipv6DstField:
			if f.Field != openflow13.OXM_FIELD_IPV6_ND_TARGET {
				return "", fmt.Errorf("IPv6 field %d", f.Field)
			}
			match = append(match, "nd_target="+v.Ipv6Dst.String())
		default:
			return "", fmt.Errorf("match field %d (%T)", f.Field, f.Value)
		}
	}
	var actions []string
	for _, instr := range fm.Instructions {
		switch in := instr.(type) {
		case *openflow13.InstrActions:
			for _, a := range in.Actions {
				s, err := formatAction(a)
				if err != nil {
					return "", err
				}
				actions = append(actions, s)
			}
		case *openflow13.InstrGotoTable:
			actions = append(actions, fmt.Sprintf("resubmit(,%d)", in.TableId))
		default:
			return "", fmt.Errorf("instruction %T", instr)
		}
	}
	if len(actions) == 0 {
		actions = []string{"drop"}
	}
	return FlowText{Cookie: fm.Cookie, Table: fm.TableId, Priority: fm.Priority,
		Match: strings.Join(match, ","), Actions: strings.Join(actions, ",")}.String(), nil
}

func formatAction(a openflow13.Action) (string, error) {
	switch a := a.(type) {
	case *openflow13.NXActionRegMove:
		src, err := wholeFieldName(a.SrcField, a.SrcOfs, a.Nbits)
		if err != nil {
			return "", err
		}
		dst, err := wholeFieldName(a.DstField, a.DstOfs, a.Nbits)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("move:%s[]->%s[]", src, dst), nil
	case *openflow13.NXActionRegLoad:
		// ofs_nbits: offset in the upper 10 bits, bits-1 in the lower 6.
		dst, err := wholeFieldName(a.DstReg, a.OfsNbits>>6, a.OfsNbits&0x3f+1)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("load:%s->%s[]", ofctlHex(a.Value), dst), nil
	case *openflow13.ActionSetField:
		switch v := a.Field.Value.(type) {
		case *openflow13.EthSrcField:
			return "mod_dl_src:" + v.EthSrc.String(), nil
		case *openflow13.Ipv6SrcField:
			ip := v.Ipv6Src.To16()
			return fmt.Sprintf("load:%s->NXM_NX_IPV6_SRC[0..63],load:%s->NXM_NX_IPV6_SRC[64..127]",
				ofctlHex(binary.BigEndian.Uint64(ip[8:])), ofctlHex(binary.BigEndian.Uint64(ip[:8]))), nil
		}
		return "", fmt.Errorf("set_field of %T", a.Field.Value)
	case *openflow13.ActionOutput:
		switch a.Port {
		case openflow13.P_IN_PORT:
			return "IN_PORT", nil
		case openflow13.P_NORMAL:
			return "NORMAL", nil
		}
		return fmt.Sprintf("output:%d", a.Port), nil
	}
	return "", fmt.Errorf("action %T", a)
}

// wholeFieldName names an NXM field header among the fields the pipeline
// uses, checking that ofs and nBits cover the whole field (what "[]"
// says).
func wholeFieldName(h *openflow13.MatchField, ofs, nBits uint16) (string, error) {
	for _, name := range []string{
		nxmEthSrc, nxmEthDst, nxmArpOp, nxmArpSha, nxmArpTha, nxmArpSpa, nxmArpTpa,
		nxmIPv6Src, nxmIPv6Dst, nxmICMPv6Type, nxmICMPv6Code, nxmNdTll,
		ericoxmNdReserved, ericoxmNdOptionsType,
	} {
		f := mustField(name)
		if f.Class != h.Class || f.Field != h.Field {
			continue
		}
		if ofs != 0 || nBits != uint16(f.Length)*8 {
			return "", fmt.Errorf("%s bits %d..%d, not the whole field", name, ofs, ofs+nBits-1)
		}
		return name, nil
	}
	return "", fmt.Errorf("field class %#x field %d", h.Class, h.Field)
}

// isIPProto reports whether f matches ip_proto proto (IpProtoField keeps
// its value unexported: compared by encoding).
func isIPProto(f openflow13.MatchField, proto uint8) bool {
	if f.Field != openflow13.OXM_FIELD_IP_PROTO || f.Value == nil {
		return false
	}
	b, err := f.Value.MarshalBinary()
	return err == nil && len(b) == 1 && b[0] == proto
}
