package route

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// WatchLinkUp calls onUp each time the interface named name comes up (its
// IFF_UP flag set after it was down or missing) in the network namespace ns
// (nil: the calling thread's, pinned at the call as in WatchRoutes, and
// watched without any capability; another namespace needs CAP_SYS_ADMIN to
// enter it), until ctx ends.
//
// Why: setting an interface down makes the kernel delete the IPv4 routes
// through it without any notification (WatchRoutes cannot see that), and
// they cannot be put back while it is down (the kernel refuses an onlink
// nexthop on a down device). So the repair has to run when it comes back
// up. A down-up flap between two checks of the bridge monitor (every
// second) is otherwise only repaired by the periodic resync.
//
// Subscription failures are logged and the subscription is made again,
// 100 ms after the first failure, doubling to 5 s; onUp is called after a
// resubscription, as a change may have been missed. It returns an error
// only if onUp is nil or the namespace cannot be opened.
//
// onRunning, if not nil, is told whether a subscription is in place, as in
// WatchRoutes.
func WatchLinkUp(ctx context.Context, ns *Namespace, name string, onUp func(), onRunning func(running bool)) error {
	if onUp == nil {
		return fmt.Errorf("watch link %s: onUp is nil", name)
	}
	setRunning := func(running bool) {
		if onRunning != nil {
			onRunning(running)
		}
	}
	defer setRunning(false)
	nsHandle, closeNS, err := watchNamespace(&ns.ns)
	if err != nil {
		return err
	}
	defer closeNS()
	backoff := watchMinBackoff
	for first := true; ; first = false {
		started := time.Now()
		err := followLink(ctx, nsHandle, name, onUp, !first, setRunning)
		setRunning(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > 10*watchMaxBackoff {
			backoff = watchMinBackoff // it had worked for a while
		}
		klog.ErrorS(err, "Link subscription failed, resubscribing", "interface", name, "retryIn", backoff)
		if !sleepCtx(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// followLink subscribes once and follows name's state until ctx ends (nil)
// or the subscription fails. With resubscribed, onUp is called once the
// subscription is in place; setRunning(true) is called then too.
func followLink(ctx context.Context, ns netns.NsHandle, name string, onUp func(), resubscribed bool, setRunning func(bool)) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer func() {
		close(done)
		// The library's reader may be blocked sending to updates: drain
		// it until the library closes the channel, in the background,
		// since that may take until its blocked receive returns (waiting
		// for it here held the agent's shutdown past its grace period).
		go func() {
			for range updates {
			}
		}()
	}()
	// The library reports errors through this callback; the fatal ones
	// end the subscription (updates is closed), the others (a message it
	// could not parse, one not from the kernel) do not, but a change may
	// have been lost with them.
	var (
		errMu   sync.Mutex
		lastErr error
	)
	lost := make(chan struct{}, 1)
	opts := netlink.LinkSubscribeOptions{
		// Namespace: set by inNamespace below.
		ErrorCallback: func(err error) {
			errMu.Lock()
			lastErr = err
			errMu.Unlock()
			select {
			case lost <- struct{}{}:
			default:
			}
		},
		// Room for bursts of link events (e.g. many interfaces created
		// at once); SO_RCVBUF is capped by net.core.rmem_max.
		ReceiveBufferSize: watchReceiveBuffer,
	}
	err := inNamespace(ns, func(target *netns.NsHandle) error {
		opts.Namespace = target
		return netlink.LinkSubscribeWithOptions(updates, done, opts)
	})
	if err != nil {
		return fmt.Errorf("subscribe to link notifications: %w", err)
	}
	setRunning(true)
	// The state before the first notification: read after subscribing,
	// so that no change falls between the read and the subscription. If
	// it cannot be read, the interface counts as down: its next
	// notification as up then costs at most one needless onUp.
	up := false
	if h, err := handleIn(ns); err != nil {
		klog.ErrorS(err, "Cannot read the interface's state, taking it as down", "interface", name)
	} else {
		if link, err := h.LinkByName(name); err == nil {
			up = link.Attrs().Flags&net.FlagUp != 0
		}
		h.Close()
	}
	if resubscribed {
		onUp()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lost:
			// Maybe a lost notification about our interface:
			// the reconcile is cheap, missing a flap is not.
			onUp()
		case u, ok := <-updates:
			if !ok {
				errMu.Lock()
				defer errMu.Unlock()
				if lastErr != nil {
					return fmt.Errorf("link subscription ended: %w", lastErr)
				}
				return fmt.Errorf("link subscription ended")
			}
			if u.Link == nil || u.Link.Attrs().Name != name {
				continue
			}
			nowUp := u.Header.Type != unix.RTM_DELLINK && u.Link.Attrs().Flags&net.FlagUp != 0
			if nowUp && !up {
				// Not verbose: a flap is rare, and this line is how
				// the e2e suite tells the link watcher repaired it.
				klog.InfoS("Gateway interface came up", "interface", name)
				onUp()
			}
			up = nowUp
		}
	}
}
