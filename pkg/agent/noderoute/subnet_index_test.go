package noderoute

import (
	"fmt"
	"net"
	"testing"

	"github.com/noderoute/noderoute/internal/testsupport"
)

func subnets(cidrs ...string) []podSubnet {
	var out []podSubnet
	for _, c := range cidrs {
		n := testsupport.MustCIDR(c)
		out = append(out, podSubnet{CIDR: n, Gateway: GatewayIP(n)})
	}
	return out
}

func TestSubnetIndexOverlapping(t *testing.T) {
	x := newSubnetIndex()
	x.set("a", subnets("10.1.0.0/24", "fd00:1::/64"))
	x.set("b", subnets("10.2.0.0/16"))
	x.set("c", subnets("10.3.4.0/26"))
	cases := []struct {
		cidr, except string
		wantOwner    string
		wantClaim    string
	}{
		{"10.1.0.0/24", "", "a", "10.1.0.0/24"},         // same prefix
		{"10.1.0.0/24", "a", "", ""},                    // its own claim
		{"10.1.0.128/25", "", "a", "10.1.0.0/24"},       // inside a shorter claim
		{"10.1.0.0/16", "", "a", "10.1.0.0/24"},         // contains a longer claim
		{"10.2.7.0/24", "", "b", "10.2.0.0/16"},         // inside b's /16
		{"10.3.0.0/16", "", "c", "10.3.4.0/26"},         // contains c's /26
		{"10.3.4.64/26", "", "", ""},                    // next to c's
		{"10.4.0.0/24", "", "", ""},                     // nowhere near
		{"0.0.0.0/0", "", "?", ""},                      // everything
		{"fd00:1::/48", "", "a", "fd00:1::/64"},         // IPv6 contains
		{"fd00:2::/64", "", "", ""},                     // IPv6 elsewhere
		{"::ffff:10.1.0.0/120", "", "a", "10.1.0.0/24"}, // IPv4-mapped spelling of 10.1.0.0/24
	}
	for _, tc := range cases {
		owner, claim, ok := x.overlapping(testsupport.MustCIDR(tc.cidr), tc.except)
		if tc.wantOwner == "?" {
			if !ok {
				t.Errorf("overlapping(%s) found nothing, want some claim", tc.cidr)
			}
			continue
		}
		if got, want := fmt.Sprintf("%v %s %s", ok, owner, claimString(ok, claim.String())), fmt.Sprintf("%v %s %s", tc.wantOwner != "", tc.wantOwner, tc.wantClaim); got != want {
			t.Errorf("overlapping(%s, except %q) = %s, want %s", tc.cidr, tc.except, got, want)
		}
	}
}

func claimString(ok bool, s string) string {
	if !ok {
		return ""
	}
	return s
}

func TestSubnetIndexSetReplacesAndClears(t *testing.T) {
	x := newSubnetIndex()
	x.set("a", subnets("10.1.0.0/24"))
	x.set("a", subnets("10.9.0.0/24"))
	if _, _, ok := x.overlapping(testsupport.MustCIDR("10.1.0.0/24"), ""); ok {
		t.Error("old claim of a still found after set replaced it")
	}
	if owner, _, ok := x.overlapping(testsupport.MustCIDR("10.9.0.0/25"), ""); !ok || owner != "a" {
		t.Errorf("new claim of a not found: %q %v", owner, ok)
	}
	x.set("a", nil)
	if _, _, ok := x.overlapping(testsupport.MustCIDR("10.0.0.0/8"), ""); ok {
		t.Error("claim found after set(a, nil)")
	}
	if len(x.owner)+len(x.byOwner)+len(x.byLen) != 0 {
		t.Errorf("index not empty: %d owners, %d byOwner, %d lengths", len(x.owner), len(x.byOwner), len(x.byLen))
	}
	// Clearing an owner that lost a prefix to another leaves the other's.
	x.set("a", subnets("10.5.0.0/24"))
	x.set("b", subnets("10.5.0.0/24"))
	x.set("a", nil)
	if owner, _, ok := x.overlapping(testsupport.MustCIDR("10.5.0.0/24"), ""); !ok || owner != "b" {
		t.Errorf("b's claim lost when a was cleared: %q %v", owner, ok)
	}
}

// BenchmarkSubnetIndex5000 is the overlap check of one full sync at 5000
// Nodes: each Node's /24 is checked against the claims so far, then
// claimed.
func BenchmarkSubnetIndex5000(b *testing.B) {
	cidrs := make([]*net.IPNet, 5000)
	for i := range cidrs {
		cidrs[i] = testsupport.MustCIDR(fmt.Sprintf("10.%d.%d.0/24", 128+i/256, i%256))
	}
	for b.Loop() {
		x := newSubnetIndex()
		for i, c := range cidrs {
			name := fmt.Sprintf("n%d", i)
			if _, _, ok := x.overlapping(c, name); ok {
				b.Fatal("unexpected overlap")
			}
			x.set(name, []podSubnet{{CIDR: c, Gateway: GatewayIP(c)}})
		}
	}
}
