package noderoute

import "net"

// Helpers over lists of subnets: a Node has one or two (one per family), so
// plain slices and linear scans are the right size.

// gatewaysOf returns the gateway IPs of the subnets in lists, once each.
func gatewaysOf(lists ...[]podSubnet) []net.IP {
	seen := map[string]bool{}
	var gws []net.IP
	for _, list := range lists {
		for _, s := range list {
			if !seen[s.Gateway.String()] {
				seen[s.Gateway.String()] = true
				gws = append(gws, s.Gateway)
			}
		}
	}
	return gws
}

// unionSubnets returns the subnets of a and those of b not in a.
func unionSubnets(a, b []podSubnet) []podSubnet {
	out := append([]podSubnet(nil), a...)
	for _, s := range b {
		if !containsSubnet(a, s) {
			out = append(out, s)
		}
	}
	return out
}

func containsSubnet(list []podSubnet, s podSubnet) bool {
	for _, x := range list {
		if x.key() == s.key() {
			return true
		}
	}
	return false
}

func sameSubnets(a, b []podSubnet) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !containsSubnet(b, s) {
			return false
		}
	}
	return true
}

func subnetKeys(list []podSubnet) []string {
	keys := make([]string, 0, len(list))
	for _, s := range list {
		keys = append(keys, s.key())
	}
	return keys
}

// hasFamilyOf reports whether list holds a subnet of s's address family.
func hasFamilyOf(list []podSubnet, s podSubnet) bool {
	for _, l := range list {
		if (l.CIDR.IP.To4() == nil) == (s.CIDR.IP.To4() == nil) {
			return true
		}
	}
	return false
}

func familyName(s podSubnet) string {
	if s.CIDR.IP.To4() != nil {
		return "IPv4"
	}
	return "IPv6"
}
