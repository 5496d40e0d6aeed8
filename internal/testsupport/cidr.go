package testsupport

import "net"

// MustCIDR parses a CIDR written in a test, panicking on a typo; it can
// initialise package-level variables.
func MustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}
