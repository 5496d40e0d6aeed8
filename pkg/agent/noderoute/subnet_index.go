package noderoute

import (
	"net"
	"net/netip"
)

// subnetIndex answers "which claimed subnet overlaps this one?" without a
// scan of every claim: the full sync of N Nodes asks it N times, and a scan
// made that O(N²), a large share of the agent's CPU in a big cluster (see
// docs/performance.md).
//
// Two prefixes overlap when one contains the other. For each prefix length
// in use (a cluster normally has one per family, e.g. /24 and /64), a claim
// of that length containing p is found by one map lookup of p truncated to
// it. Claims longer than p, which p would contain, are found by scanning the
// claims of those lengths only: a cluster in which Nodes' CIDRs have
// different lengths pays for the difference, a uniform one does not.
type subnetIndex struct {
	owner   map[netip.Prefix]string
	byOwner map[string][]netip.Prefix
	// byLen holds the claimed prefixes per length; IPv4 and IPv6 lengths
	// are kept apart by lenKey.
	byLen map[lenKey]map[netip.Prefix]struct{}
}

type lenKey struct {
	is4  bool
	bits int
}

func newSubnetIndex() *subnetIndex {
	return &subnetIndex{
		owner:   map[netip.Prefix]string{},
		byOwner: map[string][]netip.Prefix{},
		byLen:   map[lenKey]map[netip.Prefix]struct{}{},
	}
}

// toPrefix converts a parsed pod CIDR (network address, no host bits) to a
// netip.Prefix, IPv4 in its 4-byte form so that both spellings of an IPv4
// address index alike.
func toPrefix(cidr *net.IPNet) netip.Prefix {
	addr, _ := netip.AddrFromSlice(cidr.IP)
	ones, _ := cidr.Mask.Size()
	addr = addr.Unmap()
	if addr.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(addr, ones).Masked()
}

// set makes owner's claims exactly subnets (none: owner claims nothing).
func (x *subnetIndex) set(owner string, subnets []podSubnet) {
	for _, p := range x.byOwner[owner] {
		if x.owner[p] != owner {
			continue
		}
		delete(x.owner, p)
		k := lenKey{p.Addr().Is4(), p.Bits()}
		delete(x.byLen[k], p)
		if len(x.byLen[k]) == 0 {
			delete(x.byLen, k)
		}
	}
	delete(x.byOwner, owner)
	if len(subnets) == 0 {
		return
	}
	prefixes := make([]netip.Prefix, 0, len(subnets))
	for _, s := range subnets {
		p := toPrefix(s.CIDR)
		prefixes = append(prefixes, p)
		x.owner[p] = owner
		k := lenKey{p.Addr().Is4(), p.Bits()}
		if x.byLen[k] == nil {
			x.byLen[k] = map[netip.Prefix]struct{}{}
		}
		x.byLen[k][p] = struct{}{}
	}
	x.byOwner[owner] = prefixes
}

// overlapping returns a claim that overlaps cidr and is not except's, with
// its owner; ok is false when there is none.
func (x *subnetIndex) overlapping(cidr *net.IPNet, except string) (owner string, claim netip.Prefix, ok bool) {
	p := toPrefix(cidr)
	for k, claims := range x.byLen {
		if k.is4 != p.Addr().Is4() {
			continue
		}
		if k.bits <= p.Bits() {
			q := netip.PrefixFrom(p.Addr(), k.bits).Masked()
			if o, found := x.owner[q]; found && o != except {
				return o, q, true
			}
			continue
		}
		for q := range claims {
			if p.Contains(q.Addr()) && x.owner[q] != except {
				return x.owner[q], q, true
			}
		}
	}
	return "", netip.Prefix{}, false
}
