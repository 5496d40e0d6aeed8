package openflow

import "testing"

func TestOwnedCookiePatternsSelectEveryRoundButZero(t *testing.T) {
	patterns := OwnedCookiePatterns()
	for r := 0; r <= 0xffff; r++ {
		cookie := Cookie{Round: uint16(r), Category: CategoryNodeRoute}.Uint64()
		n := 0
		for _, p := range patterns {
			if cookie&p.Mask == p.Value {
				n++
			}
		}
		want := 1
		if r == 0 {
			want = 0
		}
		if n != want {
			t.Fatalf("round %d: selected by %d patterns, want %d", r, n, want)
		}
	}
}

func TestIsOwnedFlow(t *testing.T) {
	for _, tc := range []struct {
		table  uint8
		cookie uint64
		want   bool
	}{
		{ArpResponderTable, 0x1020000000000, true},
		{ClassifierTable, 0x1000000000000, true},
		{NdpTllTable, 0xffff000000000000, true},
		{ArpResponderTable, 0, false},                  // added by hand
		{ArpResponderTable, 0x0000020000000000, false}, // round 0, whatever the category
		{30, 0x1020000000000, false},                   // not our table
	} {
		if got := IsOwnedFlow(tc.table, tc.cookie); got != tc.want {
			t.Errorf("IsOwnedFlow(%d, %#x) = %v, want %v", tc.table, tc.cookie, got, tc.want)
		}
	}
}
