package route

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// gatewayPollInterval is how often ConfigureGateway looks for the gateway
// interface while waiting for it.
const gatewayPollInterval = 50 * time.Millisecond

// ConfigureGateway waits up to timeout for the interface name to exist, sets
// it up and makes sure it has each address in addrs. Each element of addrs is
// an interface address with its prefix length, e.g. 10.222.1.1/24 (the IP
// returned by net.ParseCIDR with the IPNet's mask, or netlink.ParseIPNet),
// not a network prefix. The interface is the one in ns.
//
// The wait is needed because OVS creates the kernel side of an internal port
// asynchronously: the port is in OVSDB before ovs-vswitchd has made the
// interface. A timeout of zero or less checks once.
//
// Addresses are added idempotently (replace semantics), IPv6 ones (a
// dual-stack or IPv6 Node's gateway, e.g. fd00:10:222:1::1/64) with
// IFA_F_NODAD: the gateway address is ours by construction, and duplicate
// address detection would leave it tentative, unusable as a source, for a
// second or more after every restart. Addresses already on the interface
// that are not in addrs, in any family, are left alone: the agent does not
// own them (an administrator or another component may have put them there),
// so removing a stale gateway address is the caller's decision.
func ConfigureGateway(ns *Namespace, name string, addrs []*net.IPNet, timeout time.Duration) error {
	_, err := configureGateway(ns.handle, name, addrs, timeout)
	return err
}

// configureGateway is ConfigureGateway, returning the interface's index.
func configureGateway(handle *netlink.Handle, name string, addrs []*net.IPNet, timeout time.Duration) (int, error) {
	link, err := waitForLink(handle, name, timeout)
	if err != nil {
		return 0, err
	}
	if err := handle.LinkSetUp(link); err != nil {
		return 0, fmt.Errorf("set gateway interface %s up: %w", name, err)
	}
	for _, a := range addrs {
		if a == nil || a.IP == nil {
			return 0, fmt.Errorf("configure gateway interface %s: nil address", name)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.IP, Mask: a.Mask}}
		if a.IP.To4() == nil {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := handle.AddrReplace(link, addr); err != nil {
			if a.IP.To4() == nil && errors.Is(err, unix.EACCES) {
				// The kernel's answer when the interface has
				// IPv6 turned off (a dual-stack or IPv6 pod
				// CIDR on a node without IPv6).
				return 0, fmt.Errorf("add address %s to gateway interface %s: %w (IPv6 is disabled on it: set sysctl net.ipv6.conf.%s.disable_ipv6=0, or net.ipv6.conf.default.disable_ipv6=0 before the interface is created)", a, name, err, name)
			}
			return 0, fmt.Errorf("add address %s to gateway interface %s: %w", a, name, err)
		}
	}
	return link.Attrs().Index, nil
}

// waitForLink polls for the interface name until it exists or timeout
// passes. Errors other than "no such interface" end the wait at once: they
// will not go away by waiting.
func waitForLink(handle *netlink.Handle, name string, timeout time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(timeout)
	for {
		link, err := handle.LinkByName(name)
		if err == nil {
			return link, nil
		}
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) && !errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("look up gateway interface %s: %w", name, err)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, fmt.Errorf("gateway interface %s did not appear within %v: %w", name, timeout, err)
		}
		time.Sleep(min(gatewayPollInterval, remaining))
	}
}
