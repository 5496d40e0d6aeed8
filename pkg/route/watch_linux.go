package route

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

const (
	// watchCoalesceWindow is how long WatchRoutes waits after a relevant
	// notification before calling onChange, so that a burst (ip route
	// flush, a link going down with thousands of IPv6 routes) costs one
	// call rather than one per route. It bounds the added repair latency.
	watchCoalesceWindow = 100 * time.Millisecond
	// watchMinBackoff and watchMaxBackoff bound the wait before
	// resubscribing after a failure other than an overflow. The periodic
	// resync still repairs routes meanwhile, so a slow retry loses little,
	// and a capped one does not spin on a persistent failure.
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 5 * time.Second
	// watchReceiveBuffer is the receive buffer asked for each
	// subscription's socket; see start.
	watchReceiveBuffer = 4 << 20
)

// WatchRoutes follows the kernel's IPv4 and IPv6 route notifications in the
// network namespace ns and calls onChange when one may concern our routes,
// until ctx ends. It is meant to trigger a full reconcile (list our routes,
// restore or delete to match the desired state), so that a route changed by
// hand is repaired within about watchCoalesceWindow instead of at the next
// periodic resync.
//
// ns must stay open until WatchRoutes returns; resubscribing, from whatever
// thread, stays in it. Subscribing needs no capability in the namespace the
// subscribing thread is in (CurrentNamespace, for the agent); only another
// namespace needs CAP_SYS_ADMIN, to enter it (see inNamespace).
//
// onRunning, if not nil, is called with true each time a subscription is in
// place and with false when it fails or WatchRoutes returns, so that the
// caller can show whether routes changed by hand are being watched (the
// agent's noderoute_watcher_running metric). It is called from the
// goroutine running WatchRoutes.
//
// A notification concerns us when, in the main table (the only one Client
// works on), it is one of:
//   - RTM_DELROUTE of a route with our Protocol: ours was deleted (by hand,
//     by `ip route flush`, by the kernel for an IPv6 route whose interface
//     went down, or by our own DeleteRoute);
//   - RTM_NEWROUTE flagged NLM_F_REPLACE, whatever its protocol: an existing
//     route was replaced, and the notification does not say by what, so it
//     may have been ours (`ip route replace` or `ip route change` by hand,
//     which sets protocol boot unless told otherwise, or our own
//     EnsureRoute changing a gateway).
//
// Everything else is ignored: plain adds (ours from EnsureRoute are
// exclusive, and a foreign one cannot displace an existing route without
// NLM_F_REPLACE, the kernel answers EEXIST or appends), foreign deletes, and
// other tables. Our own deletes and gateway changes therefore cost one
// extra reconcile that finds nothing to do; so does a replace of an
// unrelated route, e.g. a DHCP client renewing the default route.
//
// onChange is called from a single goroutine, never concurrently with
// itself, and WatchRoutes waits for a call in progress before returning.
// Every relevant notification is followed by a call that starts after it;
// notifications that arrive while onChange runs lead to one more call, not
// one each. It should be quick (e.g. enqueue a work item): notifications
// are read meanwhile, but a slow onChange delays the repair.
//
// Notifications can be lost: the kernel drops them when the socket's
// receive buffer overflows (ENOBUFS), and none are seen between a failed
// subscription and its replacement. Each time, WatchRoutes subscribes again
// and then calls onChange once, so the caller's full reconcile covers what
// was missed. Overflows resubscribe at once; other failures are logged and
// retried with a backoff capped at watchMaxBackoff.
//
// Changes made before WatchRoutes has subscribed are not reported: start it
// before the caller's first full sync. It returns nil when ctx ends, and an
// error only if the first subscription fails (e.g. an invalid namespace),
// which retrying would not fix.
//
// Limitation: the kernel deletes IPv4 routes silently (no RTM_DELROUTE)
// when their interface goes down or is deleted; only the IPv6 ones are
// notified. Repairing that is up to whoever watches the gateway interface
// (the routes cannot come back before the interface does anyway):
// WatchLinkUp and the agent's bridge monitor.
func WatchRoutes(ctx context.Context, ns *Namespace, onChange func(), onRunning func(running bool)) error {
	w := defaultWatcher(onChange)
	w.onRunning = onRunning
	return w.run(ctx, &ns.ns)
}

func defaultWatcher(onChange func()) *routeWatcher {
	return &routeWatcher{
		onChange:   onChange,
		window:     watchCoalesceWindow,
		minBackoff: watchMinBackoff,
		maxBackoff: watchMaxBackoff,
		subscribe:  netlink.RouteSubscribeWithOptions,
	}
}

// routeWatcher holds WatchRoutes' settings; tests shorten the durations and
// wrap subscribe to inject failures and overflows.
type routeWatcher struct {
	onChange               func()
	onRunning              func(bool)
	window                 time.Duration
	minBackoff, maxBackoff time.Duration
	subscribe              func(chan<- netlink.RouteUpdate, <-chan struct{}, netlink.RouteSubscribeOptions) error
}

// concernsUs is the filter described in WatchRoutes' documentation.
func concernsUs(u *netlink.RouteUpdate) bool {
	if u.Table != unix.RT_TABLE_MAIN {
		return false
	}
	switch u.Type {
	case unix.RTM_DELROUTE:
		return u.Protocol == Protocol
	case unix.RTM_NEWROUTE:
		return u.NlFlags&unix.NLM_F_REPLACE != 0
	}
	return false
}

func (w *routeWatcher) run(ctx context.Context, nsArg *netns.NsHandle) error {
	if w.onChange == nil {
		return errors.New("watch routes: onChange is nil")
	}
	defer w.setRunning(false)
	ns, closeNS, err := watchNamespace(nsArg)
	if err != nil {
		return err
	}
	defer closeNS()

	// The deferred calls run in reverse: cancel stops the coalescer, then
	// Wait lets a running onChange finish before WatchRoutes returns.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kick := make(chan struct{}, 1)
	trigger := func() {
		select {
		case kick <- struct{}{}:
		default: // a call is already pending and will cover this one
		}
	}
	wg.Go(func() { w.coalesce(ctx, kick) })

	sub, err := w.start(ns, trigger)
	if err != nil {
		return fmt.Errorf("subscribe to route notifications: %w", err)
	}
	w.setRunning(true)
	backoff := w.minBackoff
	for {
		err := sub.follow(ctx, trigger)
		if ctx.Err() != nil {
			return nil
		}
		w.setRunning(false)
		// A subscription that worked for a while (or delivered
		// anything) shows the failure is not a persistent one, so the
		// next one starts from the shortest wait again.
		if sub.received || time.Since(sub.started) >= w.maxBackoff {
			backoff = w.minBackoff
		}
		var wait time.Duration
		if isOverflow(err) {
			klog.InfoS("Kernel dropped route notifications (receive buffer overflow), resubscribing and reconciling")
		} else {
			wait, backoff = backoff, min(2*backoff, w.maxBackoff)
			klog.ErrorS(err, "Route subscription failed, resubscribing", "retryIn", wait)
		}
		for {
			if !sleepCtx(ctx, wait) {
				return nil
			}
			sub, err = w.start(ns, trigger)
			if err == nil {
				break
			}
			wait, backoff = backoff, min(2*backoff, w.maxBackoff)
			klog.ErrorS(err, "Route subscription failed, resubscribing", "retryIn", wait)
		}
		w.setRunning(true)
		// Whatever happened between the old subscription's last
		// notification and the new one's start is unknown: the
		// caller's full reconcile, which starts after this point,
		// covers it.
		trigger()
	}
}

func (w *routeWatcher) setRunning(running bool) {
	if w.onRunning != nil {
		w.onRunning(running)
	}
}

// coalesce calls onChange once per burst of kicks: it waits out the window
// after the first kick so the rest of the burst joins the same call.
func (w *routeWatcher) coalesce(ctx context.Context, kick chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if !sleepCtx(ctx, w.window) {
			return
		}
		// The kicks of the window are covered by the call below,
		// which starts after them; only later ones need another.
		select {
		case <-kick:
		default:
		}
		w.onChange()
	}
}

// subscription is one netlink route subscription.
type subscription struct {
	updates chan netlink.RouteUpdate
	done    chan struct{}
	started time.Time
	// received is set by follow when an update arrives (only follow's
	// goroutine touches it).
	received bool

	// mu guards err, the last error the library reported. The library
	// reports the error that ends the subscription before closing
	// updates, so once updates is closed err holds that error.
	mu  sync.Mutex
	err error
}

// start subscribes in ns. Errors the library reports without ending the
// subscription (a notification it could not parse, one from a sender that
// is not the kernel) are logged and trigger a reconcile, since a lost
// notification may have been about our routes.
func (w *routeWatcher) start(ns netns.NsHandle, trigger func()) (*subscription, error) {
	s := &subscription{
		// Buffered so that the library's reader goroutine keeps
		// draining the socket while follow is briefly busy.
		updates: make(chan netlink.RouteUpdate, 256),
		done:    make(chan struct{}),
		started: time.Now(),
	}
	opts := netlink.RouteSubscribeOptions{
		// Namespace: set by inNamespace below.
		ErrorCallback: func(err error) {
			select {
			case <-s.done:
				// Closing the socket to stop makes the
				// receive fail: expected, not worth a log.
				return
			default:
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			if !isReceiveError(err) {
				klog.ErrorS(err, "Route subscription reported an error, reconciling")
				trigger()
			}
		},
		// No dump of the existing routes: the caller reconciles at
		// start, and the dump would make onChange fire for nothing.
		ListExisting: false,
		// A larger buffer than the default (net.core.rmem_default,
		// usually 208 KiB, a few hundred notifications) makes an
		// overflow rarer in a burst. SO_RCVBUF, not SO_RCVBUFFORCE:
		// the kernel caps it at net.core.rmem_max instead of failing.
		ReceiveBufferSize: watchReceiveBuffer,
	}
	err := inNamespace(ns, func(target *netns.NsHandle) error {
		opts.Namespace = target
		return w.subscribe(s.updates, s.done, opts)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to IPv4 and IPv6 route notifications: %w", err)
	}
	return s, nil
}

// follow reads updates until ctx ends (it returns nil then) or the
// subscription ends (it returns why). Either way the subscription's socket
// is closed when it returns.
func (s *subscription) follow(ctx context.Context, trigger func()) error {
	defer s.stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-s.updates:
			if !ok {
				return s.endErr()
			}
			s.received = true
			if concernsUs(&u) {
				trigger()
			}
		}
	}
}

// endErr returns why the subscription ended, once updates is closed.
func (s *subscription) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return errors.New("route subscription ended without an error")
	}
	return s.err
}

// stop closes the socket and drains updates until the library's reader
// goroutine closes it. Both are needed even when the subscription already
// failed: the library closes the socket only when done is closed, and its
// reader blocks forever on a send nobody receives.
func (s *subscription) stop() {
	close(s.done)
	for range s.updates {
	}
}

// isReceiveError reports whether err is the library's report of a failed
// receive, after which it ends the subscription. The library formats it
// with %v ("Receive failed: ..."), so matching the text is all there is.
func isReceiveError(err error) bool {
	return strings.HasPrefix(err.Error(), "Receive failed")
}

// isOverflow reports whether err is the kernel's ENOBUFS: the socket's
// receive buffer overflowed and notifications were dropped. The library
// loses the errno (see isReceiveError), hence the match on its message. A
// miss only costs the backoff and the error log of the generic path.
func isOverflow(err error) bool {
	return errors.Is(err, unix.ENOBUFS) || (err != nil && strings.Contains(err.Error(), unix.ENOBUFS.Error()))
}

// watchNamespace returns the namespace to subscribe in and a function that
// releases it: ns itself, or an open handle on the calling thread's
// namespace when ns is nil (which only this package's tests pass). Opening
// that handle needs no capability; the subscriptions then enter it only
// from a thread that is not in it (inNamespace).
func watchNamespace(ns *netns.NsHandle) (netns.NsHandle, func(), error) {
	if ns != nil && ns.IsOpen() {
		return *ns, func() {}, nil
	}
	// Locked so that the namespace read is the calling thread's, which
	// matters only to a caller that locked its thread into another
	// namespace (as tests do).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		return netns.None(), nil, fmt.Errorf("get the current network namespace: %w", err)
	}
	return cur, func() { cur.Close() }, nil
}

// sleepCtx waits for d or until ctx ends, and reports whether the full wait
// passed with ctx still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
