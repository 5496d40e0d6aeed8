package openflow

// Which flows on the bridge are the agent's, for `noderoute-agent cleanup`:
// a flow in one of the pipeline's tables (Tables) whose cookie round is not
// 0. Round 0 is the cookie of flows added by hand (ovs-ofctl's default) and
// never one of ours (NextRound skips it), so such flows, and every flow in
// other tables, are spared, as DeleteStaleFlows spares them.

// CookiePattern selects the cookies c with c&Mask == Value.
type CookiePattern struct {
	Value, Mask uint64
}

// OwnedCookiePatterns returns cookie patterns that together select the
// cookies of every round but 0, each round once: deleting with each of them
// in each of Tables() removes every flow of ours and nothing else.
func OwnedCookiePatterns() []CookiePattern {
	// Every round but 0 is what DeleteStaleFlows deletes for a current
	// round of 0.
	rounds := staleRoundPatterns(0)
	out := make([]CookiePattern, 0, len(rounds))
	for _, p := range rounds {
		value, mask := p.cookie()
		out = append(out, CookiePattern{Value: value, Mask: mask})
	}
	return out
}

// IsOwnedFlow reports whether a flow in table with cookie is the agent's.
func IsOwnedFlow(table uint8, cookie uint64) bool {
	if _, ok := tableNames[table]; !ok {
		return false
	}
	return DecodeCookie(cookie).Round != 0
}
