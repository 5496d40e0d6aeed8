package openflow

import "testing"

// TestStaleRoundPatternsCoverOthersExactlyOnce checks, for a spread of current
// rounds, that every round but current and 0 is selected by exactly one
// pattern, and current and 0 by none.
func TestStaleRoundPatternsCoverOthersExactlyOnce(t *testing.T) {
	for _, current := range []uint16{1, 2, 3, 0x00ff, 0x8000, 0x8001, 0xaaaa, 0xfffe, 0xffff} {
		patterns := staleRoundPatterns(current)
		if len(patterns) > 32 {
			t.Errorf("current %#x: %d patterns, want at most 32", current, len(patterns))
		}
		for r := 0; r <= 0xffff; r++ {
			round := uint16(r)
			hits := 0
			for _, p := range patterns {
				if p.matches(round) {
					hits++
				}
			}
			want := 1
			if round == current || round == 0 {
				want = 0
			}
			if hits != want {
				t.Fatalf("current %#x: round %#x selected by %d patterns, want %d", current, round, hits, want)
			}
		}
	}
}

func TestCookieLayoutMatchesSeed(t *testing.T) {
	if got := (Cookie{Round: 1, Category: CategoryNodeRoute}).Uint64(); got != 0x1020000000000 {
		t.Errorf("node route cookie of round 1 = %#x, want 0x1020000000000", got)
	}
	if got := (Cookie{Round: 1, Category: CategoryPipeline}).Uint64(); got != 0x1000000000000 {
		t.Errorf("pipeline cookie of round 1 = %#x, want 0x1000000000000", got)
	}
	if got := (Cookie{Round: 1, Category: CategoryNodeRouteNDP}).Uint64(); got != 0x1030000000000 {
		t.Errorf("NDP responder cookie of round 1 = %#x, want 0x1030000000000", got)
	}
	if CategoryNodeRouteNDP.String() != "NodeRouteNDP" || Category(7).String() != "Category(0x7)" {
		t.Errorf("category names: %s %s", CategoryNodeRouteNDP, Category(7))
	}
	c := Cookie{Round: 0xbeef, Category: CategoryNodeRoute, Object: 0x12_3456_789a}
	if got := DecodeCookie(c.Uint64()); got != c {
		t.Errorf("DecodeCookie(Encode(%+v)) = %+v", c, got)
	}
	if NextRound(0xffff) != 1 || NextRound(0) != 1 || NextRound(7) != 8 {
		t.Errorf("NextRound: got %d %d %d, want 1 1 8", NextRound(0xffff), NextRound(0), NextRound(7))
	}
}
