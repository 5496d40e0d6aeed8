package noderoute

import (
	"net"
	"strings"
	"testing"
)

func TestGatewayIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.222.2.0/24":    "10.222.2.1",
		"10.222.0.0/16":    "10.222.0.1",
		"10.0.0.128/25":    "10.0.0.129",
		"192.168.7.4/30":   "192.168.7.5",
		"fd00:10:244::/64": "fd00:10:244::1",
		"fd00::100/120":    "fd00::101",
	} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if got := GatewayIP(n).String(); got != want {
			t.Errorf("GatewayIP(%s) = %s, want %s", cidr, got, want)
		}
	}
}

func TestParsePodSubnets(t *testing.T) {
	subnets, errs := parsePodSubnets([]string{
		"10.222.2.0/24", "fd00:10:244:2::/64", "garbage", "10.0.0.0/0", "10.1.1.1/32", "10.1.1.0/31",
		"10.222.2.7/24", // same network as the first: dropped as a duplicate
	})
	var got []string
	for _, s := range subnets {
		got = append(got, s.CIDR.String()+"@"+s.Gateway.String())
	}
	if want := "10.222.2.0/24@10.222.2.1 fd00:10:244:2::/64@fd00:10:244:2::1"; strings.Join(got, " ") != want {
		t.Errorf("subnets = %v, want %s", got, want)
	}
	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4: %v", len(errs), errs)
	}
	if subnets[0].Gateway.To4() == nil || len(subnets[0].CIDR.IP) != net.IPv4len {
		t.Errorf("IPv4 subnet not in 4-byte form: %#v", subnets[0])
	}
}

// The gateway interface gets the first address of every usable pod CIDR,
// with the CIDR's prefix length, IPv6 included (/64 and /120 alike).
func TestGatewayAddresses(t *testing.T) {
	for _, tc := range []struct {
		cidrs []string
		want  string
	}{
		{[]string{"10.222.1.0/24"}, "10.222.1.1/24"},
		{[]string{"10.222.1.0/24", "fd00:10:222:1::/64"}, "10.222.1.1/24 fd00:10:222:1::1/64"},
		{[]string{"fd00:10:222:1::/64", "10.222.1.0/24"}, "fd00:10:222:1::1/64 10.222.1.1/24"},
		{[]string{"fd00:10:222:1::/64"}, "fd00:10:222:1::1/64"},
		{[]string{"fd00::100/120"}, "fd00::101/120"},
		{[]string{"fd00::7:0/112", "fd00::/127", "bogus"}, "fd00::7:1/112"},
	} {
		var got []string
		for _, a := range GatewayAddresses(node("worker1", tc.cidrs...)) {
			got = append(got, a.String())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("GatewayAddresses(%v) = %v, want %s", tc.cidrs, got, tc.want)
		}
	}
}
