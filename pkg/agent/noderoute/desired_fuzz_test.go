package noderoute

import (
	"net"
	"testing"
)

// FuzzParsePodSubnets feeds arbitrary pod CIDR strings (as a hostile or
// broken Node object could carry) to the parser and checks what every
// caller relies on: no panic, and every subnet it returns is usable: a
// network address in canonical form, not /0, with room for a gateway, the
// gateway inside it and neither the network address nor outside it, IPv4 in
// 4-byte form, no duplicates.
func FuzzParsePodSubnets(f *testing.F) {
	for _, seed := range []string{
		"10.222.2.0/24", "10.222.2.7/24", "0.0.0.0/0", "::/0", "10.1.1.1/32", "10.1.1.0/31", "10.1.1.0/30",
		"fd00:10:244::/64", "fd00::100/120", "fd00::/127", "::ffff:10.1.2.0/120", "garbage", "", "10.0.0.0/33",
		"255.255.255.252/30", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126",
	} {
		f.Add(seed, "10.222.2.0/24")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		subnets, errs := parsePodSubnets([]string{a, b})
		if len(subnets)+len(errs) > 2 {
			t.Fatalf("%d subnets and %d errors from 2 inputs", len(subnets), len(errs))
		}
		seen := map[string]bool{}
		for _, s := range subnets {
			ones, bits := s.CIDR.Mask.Size()
			if ones == 0 || ones > bits-2 {
				t.Fatalf("%q,%q: unusable prefix %s accepted", a, b, s.CIDR)
			}
			if bits == 32 && len(s.CIDR.IP) != net.IPv4len {
				t.Fatalf("IPv4 subnet %s not in 4-byte form", s.CIDR)
			}
			if !s.CIDR.IP.Equal(s.CIDR.IP.Mask(s.CIDR.Mask)) {
				t.Fatalf("subnet %s is not a network address", s.CIDR)
			}
			if !s.CIDR.Contains(s.Gateway) || s.Gateway.Equal(s.CIDR.IP) {
				t.Fatalf("gateway %s of %s is outside it or its network address", s.Gateway, s.CIDR)
			}
			if seen[s.key()] {
				t.Fatalf("duplicate subnet %s", s.key())
			}
			seen[s.key()] = true
		}
	})
}
