package openflow

// roundPattern selects cookies whose round bits, under mask, equal value.
type roundPattern struct {
	value, mask uint16
}

// staleRoundPatterns returns cookie patterns that together select every
// round except current and except 0. OpenFlow can only delete by
// "cookie & mask == value", not by "round != current", so the set of other
// rounds is split by the first bit (from the top) in which a round differs
// from current: all rounds that agree with current above bit i and differ at
// bit i form one pattern. That gives at most 16 patterns covering every other
// round exactly once. Round 0 is left out, since it is the cookie of flows
// added by hand (ovs-ofctl's default) and such flows are not ours: the one
// pattern that contains 0 is split again the same way around 0.
func staleRoundPatterns(current uint16) []roundPattern {
	var out []roundPattern
	for i := 15; i >= 0; i-- {
		bit := uint16(1) << i
		above := ^(bit<<1 - 1) // bits above i; 0 when i is 15
		mask := above | bit
		value := (current & above) | (^current & bit)
		if value == 0 {
			// This pattern is "zeros above and at bit i, anything
			// below": it contains round 0. Keep all of it but 0.
			out = append(out, nonZeroBelow(i)...)
			continue
		}
		out = append(out, roundPattern{value: value, mask: mask})
	}
	return out
}

// nonZeroBelow returns patterns selecting every round that has only zeros at
// and above bit i, and at least one 1 below it.
func nonZeroBelow(i int) []roundPattern {
	var out []roundPattern
	for j := i - 1; j >= 0; j-- {
		bit := uint16(1) << j
		out = append(out, roundPattern{value: bit, mask: ^(bit - 1)})
	}
	return out
}

func (p roundPattern) matches(round uint16) bool {
	return round&p.mask == p.value
}

// cookie returns the pattern as a flow cookie value and mask.
func (p roundPattern) cookie() (value, mask uint64) {
	return uint64(p.value) << roundShift, uint64(p.mask) << roundShift
}
