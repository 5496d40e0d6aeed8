package openflow

import "fmt"

// Cookie layout, high bits first:
//
//	| round (16 bits) | category (8 bits) | object (40 bits) |
//
// The round changes on every agent start, so flows left by an earlier
// incarnation can be told apart (and deleted) after the new one has installed
// its own. The category says which part of the pipeline a flow belongs to.
// The object is reserved for per-object flows; the ARP and NDP responder flows
// keep it at 0, as in testdata/seed-table20.txt.
const (
	roundShift    = 48
	categoryShift = 40
	objectBits    = 40

	// RoundMask selects the round bits of a cookie.
	RoundMask uint64 = 0xffff << roundShift
	// CategoryMask selects the category bits of a cookie.
	CategoryMask uint64 = 0xff << categoryShift
	// ObjectMask selects the object bits of a cookie.
	ObjectMask uint64 = 1<<objectBits - 1
)

// Category names the part of the pipeline that installed a flow.
type Category uint8

const (
	// CategoryPipeline marks the base flows: table 0's dispatch, the
	// fallback (to NORMAL) and drop flows of tables 20 and 21, and table
	// 22's flow that completes every Neighbor Advertisement.
	CategoryPipeline Category = 0x00
	// CategoryNodeRoute marks the per-remote-Node ARP responder flows
	// (table 20, one per remote IPv4 pod CIDR).
	CategoryNodeRoute Category = 0x02
	// CategoryNodeRouteNDP marks the per-remote-Node NDP responder flows
	// (table 21, one per remote IPv6 pod CIDR).
	CategoryNodeRouteNDP Category = 0x03
)

func (c Category) String() string {
	switch c {
	case CategoryPipeline:
		return "Pipeline"
	case CategoryNodeRoute:
		return "NodeRoute"
	case CategoryNodeRouteNDP:
		return "NodeRouteNDP"
	default:
		return fmt.Sprintf("Category(%#x)", uint8(c))
	}
}

// Cookie is a decoded flow cookie.
type Cookie struct {
	Round    uint16
	Category Category
	Object   uint64
}

// Uint64 encodes the cookie.
func (c Cookie) Uint64() uint64 {
	return uint64(c.Round)<<roundShift | uint64(c.Category)<<categoryShift | c.Object&ObjectMask
}

// DecodeCookie splits a raw cookie into its fields.
func DecodeCookie(raw uint64) Cookie {
	return Cookie{
		Round:    uint16(raw >> roundShift),
		Category: Category(raw >> categoryShift),
		Object:   raw & ObjectMask,
	}
}

// NextRound returns the round that follows r. Round 0 is never used, so that
// a cookie of 0 (the default of flows added by hand) is never taken for ours.
func NextRound(r uint16) uint16 {
	if r == 0xffff {
		return 1
	}
	return r + 1
}
