package openflow

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/contiv/libOpenflow/openflow13"
)

// Fields the pipeline's actions read and write, by their NXM names (which
// ovs-ofctl prints in move and load actions), and their sizes.
const (
	nxmEthSrc      = "NXM_OF_ETH_SRC"
	nxmEthDst      = "NXM_OF_ETH_DST"
	nxmArpOp       = "NXM_OF_ARP_OP"
	nxmArpSha      = "NXM_NX_ARP_SHA"
	nxmArpTha      = "NXM_NX_ARP_THA"
	nxmArpSpa      = "NXM_OF_ARP_SPA"
	nxmArpTpa      = "NXM_OF_ARP_TPA"
	nxmIPv6Src     = "NXM_NX_IPV6_SRC"
	nxmIPv6Dst     = "NXM_NX_IPV6_DST"
	nxmICMPv6Type  = "NXM_NX_ICMPV6_TYPE"
	nxmICMPv6Code  = "NXM_NX_ICMPV6_CODE"
	nxmNdTll       = "NXM_NX_ND_TLL"
	noCookieFilter = 0

	ericoxmNdReserved    = "ERICOXM_OF_ICMPV6_ND_RESERVED"
	ericoxmNdOptionsType = "ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE"

	bitsMAC           = 48
	bitsIPv4          = 32
	bitsIPv6          = 8 * net.IPv6len
	bitsARPOp         = 16
	bitsICMPv6Type    = 8
	bitsICMPv6Code    = 8
	bitsNdReserved    = 32
	bitsNdOptionsType = 8
)

// extensionFields are the OVS fields the NDP responder writes that
// libOpenflow has no name for: OVS's nd_reserved and nd_options_type
// (OVS 2.11+), which live in class ERICOXM_OF (0x1000) as fields 1 (4 bytes)
// and 2 (1 byte), per ovs-fields(7) and OVS's meta-flow.h. ovs-ofctl prints
// them as ERICOXM_OF_ICMPV6_ND_RESERVED and ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE
// (checked on a real bridge by TestNdpFlowsOnRealBridge).
var extensionFields = map[string]openflow13.MatchField{
	ericoxmNdReserved:    {Class: 0x1000, Field: 1, Length: 4},
	ericoxmNdOptionsType: {Class: 0x1000, Field: 2, Length: 1},
}

// flowAction is one action of a flow: the OpenFlow action it sends and how
// ovs-ofctl prints it.
type flowAction interface {
	message() openflow13.Action
	text() string
}

// move copies the whole field src into the whole field dst, both of nBits
// bits ("move:<src>[]-><dst>[]").
func move(src, dst string, nBits uint16) flowAction { return moveAction{src, dst, nBits} }

// load writes value into the whole field dst of nBits bits
// ("load:<value>-><dst>[]").
func load(dst string, nBits int, value uint64) flowAction { return loadAction{dst, nBits, value} }

// setEthSrc sets the Ethernet source address ("mod_dl_src:<mac>").
func setEthSrc(mac net.HardwareAddr) flowAction { return setEthSrcAction{mac} }

// setIPv6Src sets the IPv6 source address, ip in 16-byte form.
func setIPv6Src(ip net.IP) flowAction { return setIPv6SrcAction{ip} }

// output sends the packet to port, one of the reserved ports of
// outputPortNames.
func output(port uint32) flowAction { return outputAction(port) }

type moveAction struct {
	src, dst string
	nBits    uint16
}

func (a moveAction) message() openflow13.Action {
	return openflow13.NewNXActionRegMove(a.nBits, 0, 0, mustField(a.src), mustField(a.dst))
}

func (a moveAction) text() string { return fmt.Sprintf("move:%s[]->%s[]", a.src, a.dst) }

type loadAction struct {
	dst   string
	nBits int
	value uint64
}

func (a loadAction) message() openflow13.Action {
	return openflow13.NewNXActionRegLoad(openflow13.NewNXRange(0, a.nBits-1).ToOfsBits(), mustField(a.dst), a.value)
}

func (a loadAction) text() string { return fmt.Sprintf("load:%s->%s[]", ofctlHex(a.value), a.dst) }

type setEthSrcAction struct{ mac net.HardwareAddr }

func (a setEthSrcAction) message() openflow13.Action {
	return openflow13.NewActionSetField(*openflow13.NewEthSrcField(a.mac, nil))
}

func (a setEthSrcAction) text() string { return "mod_dl_src:" + a.mac.String() }

type setIPv6SrcAction struct{ ip net.IP }

func (a setIPv6SrcAction) message() openflow13.Action {
	return openflow13.NewActionSetField(*openflow13.NewIpv6SrcField(a.ip, nil))
}

// text: 128 bits do not fit a reg_load, so ovs-ofctl shows this set_field
// as two loads of 64 bits, low half first.
func (a setIPv6SrcAction) text() string {
	return fmt.Sprintf("load:%s->%s[0..63],load:%s->%s[64..127]",
		ofctlHex(binary.BigEndian.Uint64(a.ip[8:])), nxmIPv6Src,
		ofctlHex(binary.BigEndian.Uint64(a.ip[:8])), nxmIPv6Src)
}

// outputPortNames are the reserved ports the pipeline outputs to, as
// ovs-ofctl names them.
var outputPortNames = map[uint32]string{
	openflow13.P_IN_PORT: "IN_PORT",
	openflow13.P_NORMAL:  "NORMAL",
}

type outputAction uint32

func (a outputAction) message() openflow13.Action { return openflow13.NewActionOutput(uint32(a)) }

func (a outputAction) text() string {
	if name, ok := outputPortNames[uint32(a)]; ok {
		return name
	}
	return fmt.Sprintf("output:%d", uint32(a))
}

// resubmitText is how ovs-ofctl prints goto_table:<table>.
func resubmitText(table uint8) string { return fmt.Sprintf("resubmit(,%d)", table) }

// mustField looks up an NXM field by name, in libOpenflow's table or in
// extensionFields. The names are constants of this file, so a failure is a
// programming error caught by the unit tests.
func mustField(name string) *openflow13.MatchField {
	if f, ok := extensionFields[name]; ok {
		return &f
	}
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

// ofctlHex formats v as ovs-ofctl prints a loaded value: C's "%#x", which
// is "0" for zero and 0x-prefixed hex otherwise.
func ofctlHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}
