package route

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is the network namespace the agent's routes and gateway
// interface live in, with what both kinds of users need: a netlink handle
// (one rtnetlink socket, shared by the route client and the gateway code)
// and a handle on the namespace itself, which the watchers subscribe in.
// The agent works in its own namespace (CurrentNamespace); tests and
// agentctl --netns name another one (NamespaceFromPath).
type Namespace struct {
	handle *netlink.Handle
	ns     netns.NsHandle
	// what names the namespace in errors.
	what string
}

// CurrentNamespace opens the network namespace of the calling thread (the
// host's, for the agent). It needs no capability: the namespace handle is
// read from /proc, and the socket is opened where the thread already is.
func CurrentNamespace() (*Namespace, error) {
	// Locked so that the namespace read is the calling thread's, which
	// matters only to a caller that locked its thread into another
	// namespace (as tests do).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("get the current network namespace: %w", err)
	}
	// One socket for every request: a full sync adds thousands of
	// routes, and the zero Handle would open and close a socket per
	// request. Should the socket not open now, the zero Handle still
	// works (and the error comes back with the first request).
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		h = &netlink.Handle{}
	}
	return &Namespace{handle: h, ns: ns, what: "current"}, nil
}

// NamespaceFromPath opens the network namespace at path (such as
// /var/run/netns/<name>). Entering it, unless the caller is already in it,
// needs CAP_SYS_ADMIN.
func NamespaceFromPath(path string) (*Namespace, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	h, err := openHandleIn(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink socket in network namespace %s: %w", path, err)
	}
	return &Namespace{handle: h, ns: ns, what: path}, nil
}

// Netlink is the namespace's netlink handle, for callers that look at the
// kernel's state directly (tests, diagnostics). It stays valid until Close.
func (n *Namespace) Netlink() *netlink.Handle { return n.handle }

// String names the namespace: "current" or its path.
func (n *Namespace) String() string { return n.what }

// Close releases the socket and the namespace handle. Nothing that was
// given the namespace may use it afterwards.
func (n *Namespace) Close() {
	n.handle.Close()
	n.ns.Close()
}
