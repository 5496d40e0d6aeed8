package route

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNamespace calls fn on a thread locked for the call, with the namespace
// to give the netlink library: nil when the thread is already in ns, so
// that the library opens its socket right there, or &ns otherwise, for the
// library to enter ns and come back.
//
// Why: the library (nl.executeInNetns, behind RouteSubscribeWithOptions,
// LinkSubscribeWithOptions and NewHandleAt) calls setns(2) for any open
// namespace handle it is given, even one of the namespace the thread is
// already in, and setns needs CAP_SYS_ADMIN. The agent runs with
// CAP_NET_ADMIN alone, in its own namespace: given a handle on it, every
// subscription failed with EPERM. Entering another namespace (tests,
// nodesim) still needs CAP_SYS_ADMIN, as it should.
//
// The thread stays locked while fn runs so that the namespace compared is
// the one the library's socket is created in.
func inNamespace(ns netns.NsHandle, fn func(target *netns.NsHandle) error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get the current thread's network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		return fn(nil)
	}
	return fn(&ns)
}

// handleIn returns a netlink handle with one rtnetlink socket in ns,
// entering ns (setns) only when the calling thread is not already in it;
// see inNamespace.
func handleIn(ns netns.NsHandle) (*netlink.Handle, error) {
	h, err := openHandleIn(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in network namespace %s: %w", ns, err)
	}
	return h, nil
}

// openHandleIn is handleIn, leaving the error to the caller to describe.
func openHandleIn(ns netns.NsHandle) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := inNamespace(ns, func(target *netns.NsHandle) error {
		var err error
		if target == nil {
			h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		} else {
			h, err = netlink.NewHandleAt(*target, unix.NETLINK_ROUTE)
		}
		return err
	})
	return h, err
}
