package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// newWatchNS is newTestNS, except that a missing prerequisite fails the
// test when testsupport.RequireIntegrationEnv=1 instead of skipping it.
// -short still skips: it asks for unit tests only.
func newWatchNS(t *testing.T) *testNS {
	t.Helper()
	if !testing.Short() && testsupport.IntegrationRequired() {
		if os.Geteuid() != 0 {
			t.Fatalf("integration test needs root (%s=1, so this is a failure)", testsupport.RequireIntegrationEnv)
		}
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatalf("integration test needs iproute2's ip (%s=1, so this is a failure)", testsupport.RequireIntegrationEnv)
		}
	}
	return newTestNS(t)
}

// callCounter counts onChange calls and signals each one.
type callCounter struct {
	n      atomic.Int64
	signal chan struct{}
}

func newCallCounter() *callCounter {
	return &callCounter{signal: make(chan struct{}, 1)}
}

func (c *callCounter) onChange() {
	c.n.Add(1)
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// waitAbove waits until more than before calls were made and returns how
// long that took; it fails the test after timeout.
func (c *callCounter) waitAbove(t *testing.T, before int64, timeout time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	for c.n.Load() <= before {
		select {
		case <-c.signal:
		case <-deadline:
			t.Fatalf("%s: onChange not called within %v (calls: %d)", what, timeout, c.n.Load())
		}
	}
	return time.Since(start)
}

// settle waits until no call was made for quiet and returns the count. quiet
// is well above the coalescing window, so a pending call shows up.
func (c *callCounter) settle(quiet time.Duration) int64 {
	for {
		n := c.n.Load()
		time.Sleep(quiet)
		if c.n.Load() == n {
			return n
		}
	}
}

// testWatcher returns a watcher with WatchRoutes' settings whose subscribe
// signals each successful subscription on the returned channel, so tests
// change routes only once the watcher listens.
func testWatcher(onChange func()) (*routeWatcher, <-chan struct{}) {
	w := defaultWatcher(onChange)
	return w, signalSubscriptions(w)
}

// recordErrors wraps w.subscribe so that the errors the library reports are
// also counted: overflows, and all of them.
func recordErrors(w *routeWatcher) (overflows, all *atomic.Int64) {
	overflows, all = new(atomic.Int64), new(atomic.Int64)
	inner := w.subscribe
	w.subscribe = func(ch chan<- netlink.RouteUpdate, done <-chan struct{}, opts netlink.RouteSubscribeOptions) error {
		cb := opts.ErrorCallback
		opts.ErrorCallback = func(err error) {
			all.Add(1)
			if isOverflow(err) {
				overflows.Add(1)
			}
			cb(err)
		}
		return inner(ch, done, opts)
	}
	return overflows, all
}

// signalSubscriptions wraps w.subscribe to signal each success.
func signalSubscriptions(w *routeWatcher) <-chan struct{} {
	subscribed := make(chan struct{}, 100)
	inner := w.subscribe
	w.subscribe = func(ch chan<- netlink.RouteUpdate, done <-chan struct{}, opts netlink.RouteSubscribeOptions) error {
		err := inner(ch, done, opts)
		if err == nil {
			subscribed <- struct{}{}
		}
		return err
	}
	return subscribed
}

func waitSubscribed(t *testing.T, subscribed <-chan struct{}) {
	t.Helper()
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not subscribe within 10s")
	}
}

// startWatch runs w in the background until the returned stop is called or
// the test ends, and checks that it returns nil promptly when stopped.
func startWatch(t *testing.T, w *routeWatcher, ns *netns.NsHandle) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.run(ctx, ns) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("watcher returned %v after cancel, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("watcher did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestConcernsUs(t *testing.T) {
	dst := testsupport.MustCIDR("10.222.2.0/24")
	route := func(typ uint16, flags uint16, proto netlink.RouteProtocol, table int) *netlink.RouteUpdate {
		return &netlink.RouteUpdate{Type: typ, NlFlags: flags, Route: netlink.Route{Dst: dst, Protocol: proto, Table: table}}
	}
	const main, other = unix.RT_TABLE_MAIN, 100
	const boot = unix.RTPROT_BOOT
	const added = unix.NLM_F_EXCL | unix.NLM_F_CREATE // what an exclusive add is notified with
	for _, tc := range []struct {
		name string
		u    *netlink.RouteUpdate
		want bool
	}{
		{"ours deleted", route(unix.RTM_DELROUTE, 0, Protocol, main), true},
		{"ours deleted in another table", route(unix.RTM_DELROUTE, 0, Protocol, other), false},
		{"foreign deleted", route(unix.RTM_DELROUTE, 0, boot, main), false},
		{"ours added", route(unix.RTM_NEWROUTE, added, Protocol, main), false},
		{"ours replaced by ours", route(unix.RTM_NEWROUTE, unix.NLM_F_REPLACE, Protocol, main), true},
		{"replaced by a foreign route", route(unix.RTM_NEWROUTE, unix.NLM_F_REPLACE, boot, main), true},
		{"replaced in another table", route(unix.RTM_NEWROUTE, unix.NLM_F_REPLACE, boot, other), false},
		{"foreign added", route(unix.RTM_NEWROUTE, added, boot, main), false},
		{"foreign appended", route(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, boot, main), false},
		{"other message", route(unix.RTM_GETROUTE, 0, Protocol, main), false},
	} {
		if got := concernsUs(tc.u); got != tc.want {
			t.Errorf("%s: concernsUs = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeSubscriptions stands in for netlink.RouteSubscribeWithOptions,
// following its contract: the channel is closed after the error callback
// reports the receive error, and when done is closed.
type fakeSubscriptions struct {
	mu    sync.Mutex
	calls int
	times []time.Time // of every call
	fail  map[int]error
	subs  chan *fakeSub
	// namespaces counts the calls given a namespace to enter.
	namespaces int
}

type fakeSub struct {
	mu     sync.Mutex
	ch     chan<- netlink.RouteUpdate
	closed bool
	cb     func(error)
	done   <-chan struct{}
}

func newFakeSubscriptions() *fakeSubscriptions {
	return &fakeSubscriptions{fail: map[int]error{}, subs: make(chan *fakeSub, 100)}
}

func (f *fakeSubscriptions) subscribe(ch chan<- netlink.RouteUpdate, done <-chan struct{}, opts netlink.RouteSubscribeOptions) error {
	f.mu.Lock()
	f.calls++
	f.times = append(f.times, time.Now())
	if opts.Namespace != nil {
		f.namespaces++
	}
	err := f.fail[f.calls]
	f.mu.Unlock()
	if err != nil {
		return err
	}
	s := &fakeSub{ch: ch, cb: opts.ErrorCallback, done: done}
	go func() {
		<-done
		// What the library does: closing the socket makes its
		// receive fail, which it reports before closing ch.
		s.end(errors.New("Receive failed: resource temporarily unavailable"))
	}()
	f.subs <- s
	return nil
}

func (f *fakeSubscriptions) next(t *testing.T) *fakeSub {
	t.Helper()
	select {
	case s := <-f.subs:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription within 10s")
		return nil
	}
}

// send delivers u as the library would, blocking until it is read.
func (s *fakeSub) send(u netlink.RouteUpdate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.ch <- u
	}
}

// end makes the subscription fail with err.
func (s *fakeSub) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.cb(err)
	s.closed = true
	close(s.ch)
}

// ourDelete is the notification of a deleted route of ours.
var ourDelete = netlink.RouteUpdate{Type: unix.RTM_DELROUTE, Route: netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN}}

// runningLog records onRunning reports.
type runningLog struct {
	mu      sync.Mutex
	reports []bool
}

func (l *runningLog) report(running bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports = append(l.reports, running)
}

func (l *runningLog) get() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reports)
}

// TestWatchRoutesResubscribe checks the error handling against a fake
// subscription: failures are retried with a doubling backoff and followed
// by one onChange; an overflow is resubscribed at once; errors that do not
// end the subscription only trigger onChange. onRunning follows the
// subscription, and the current namespace is never entered (nil
// Namespace: no setns, no CAP_SYS_ADMIN).
func TestWatchRoutesResubscribe(t *testing.T) {
	calls := newCallCounter()
	fake := newFakeSubscriptions()
	var running runningLog
	w := &routeWatcher{
		onChange:   calls.onChange,
		onRunning:  running.report,
		window:     10 * time.Millisecond,
		minBackoff: 50 * time.Millisecond,
		maxBackoff: 200 * time.Millisecond,
		subscribe:  fake.subscribe,
	}
	fake.fail[2] = errors.New("injected failure 2")
	fake.fail[3] = errors.New("injected failure 3")
	stop := startWatch(t, w, nil)

	sub := fake.next(t)
	sub.send(netlink.RouteUpdate{Type: unix.RTM_NEWROUTE, NlFlags: unix.NLM_F_EXCL | unix.NLM_F_CREATE, Route: netlink.Route{Protocol: Protocol, Table: unix.RT_TABLE_MAIN}})
	if n := calls.settle(100 * time.Millisecond); n != 0 {
		t.Fatalf("onChange called %d times for our own add, want 0", n)
	}
	sub.send(ourDelete)
	calls.waitAbove(t, 0, 5*time.Second, "our route deleted")
	before := calls.settle(100 * time.Millisecond)

	// The socket fails. The subscription had delivered updates, so the
	// backoff starts from its minimum: call 2 comes 50ms later and
	// fails, call 3 100ms after it and fails, call 4 200ms (the cap)
	// after that and succeeds; then onChange covers the gap.
	ended := time.Now()
	sub.end(errors.New("Receive failed: injected receive error"))
	sub = fake.next(t)
	calls.waitAbove(t, before, 5*time.Second, "after resubscribing")
	fake.mu.Lock()
	times := slices.Clone(fake.times)
	fake.mu.Unlock()
	if len(times) != 4 {
		t.Fatalf("%d subscribe calls, want 4", len(times))
	}
	waits := []time.Duration{times[1].Sub(ended), times[2].Sub(times[1]), times[3].Sub(times[2])}
	for i, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		if waits[i] < want {
			t.Errorf("wait before subscribe call %d: %v, want at least %v", i+2, waits[i], want)
		}
	}
	t.Logf("waits before subscribe calls 2, 3, 4: %v", waits)
	before = calls.settle(100 * time.Millisecond)

	// An error that does not end the subscription triggers a reconcile
	// and nothing else.
	sub.cb(errors.New("Wrong sender portid 42, expected 0"))
	calls.waitAbove(t, before, 5*time.Second, "non-fatal subscription error")
	before = calls.settle(100 * time.Millisecond)
	if n := len(fake.subs); n != 0 {
		t.Fatalf("%d new subscriptions after a non-fatal error, want 0", n)
	}

	// The new subscription works.
	sub.send(ourDelete)
	calls.waitAbove(t, before, 5*time.Second, "our route deleted after resubscribing")

	stop()
	if got, want := running.get(), []bool{true, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("onRunning reports %v, want %v (running, failed, resubscribed, stopped)", got, want)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.namespaces != 0 {
		t.Errorf("%d of %d subscribe calls were given a namespace to enter, want none: the watcher runs in the current one", fake.namespaces, fake.calls)
	}
}

func TestWatchRoutesOverflowResubscribesAtOnce(t *testing.T) {
	calls := newCallCounter()
	fake := newFakeSubscriptions()
	w := &routeWatcher{
		onChange: calls.onChange,
		window:   10 * time.Millisecond,
		// Far above the test's timeout: only the overflow path can
		// resubscribe in time.
		minBackoff: time.Minute,
		maxBackoff: time.Minute,
		subscribe:  fake.subscribe,
	}
	startWatch(t, w, nil)
	sub := fake.next(t)
	// What the library reports when the kernel answers ENOBUFS.
	sub.end(fmt.Errorf("Receive failed: %v", unix.ENOBUFS))
	fake.next(t)
	d := calls.waitAbove(t, 0, 10*time.Second, "after an overflow")
	t.Logf("onChange %v after the overflow", d)
}

func TestWatchRoutesFirstSubscriptionFails(t *testing.T) {
	fake := newFakeSubscriptions()
	injected := errors.New("injected")
	fake.fail[1] = injected
	var running runningLog
	w := &routeWatcher{onChange: func() { t.Error("onChange called") }, onRunning: running.report, window: time.Millisecond, minBackoff: time.Millisecond, maxBackoff: time.Millisecond, subscribe: fake.subscribe}
	err := w.run(context.Background(), nil)
	if !errors.Is(err, injected) {
		t.Fatalf("run = %v, want the subscription error", err)
	}
	if got := running.get(); !slices.Equal(got, []bool{false}) {
		t.Errorf("onRunning reports %v, want [false]", got)
	}
	t.Logf("error: %v", err)
}

// TestWatchRoutesKernel checks which real changes call onChange.
func TestWatchRoutesKernel(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")
	mustEnsure(t, c, "fd00:10:222:2::/64", "fd00:10:222:2::1")

	calls := newCallCounter()
	w, subscribed := testWatcher(calls.onChange)
	startWatch(t, w, &n.ns)
	waitSubscribed(t, subscribed)

	// Changes that do not concern us: our own adds, foreign routes
	// added and removed, our protocol in another table.
	mustEnsure(t, c, "10.222.3.0/24", "10.222.3.1")
	n.ip(t, "route", "add", "10.99.0.0/24", "via", "10.222.1.5")
	n.ip(t, "route", "del", "10.99.0.0/24")
	n.ip(t, "route", "replace", "10.98.0.0/24", "via", "10.222.1.5") // creates it: nothing replaced
	n.ip(t, "-6", "route", "add", "fd00:99::/64", "dev", testGateway)
	n.ip(t, "-6", "route", "del", "fd00:99::/64")
	n.ip(t, "route", "add", "10.96.0.0/24", "dev", testGateway, "proto", "94", "table", "100")
	n.ip(t, "route", "del", "10.96.0.0/24", "dev", testGateway, "proto", "94", "table", "100")
	if got := calls.settle(500 * time.Millisecond); got != 0 {
		t.Fatalf("onChange called %d times for changes that do not concern us, want 0", got)
	}

	// Changes to ours, each by hand.
	mustEnsure(t, c, "10.222.4.0/24", "10.222.4.1")
	var before int64
	for _, tc := range []struct {
		what string
		args []string
	}{
		{"ip route del of ours", []string{"route", "del", "10.222.2.0/24"}},
		{"ip -6 route del of ours", []string{"-6", "route", "del", "fd00:10:222:2::/64"}},
		{"ip route replace over ours (proto boot)", []string{"route", "replace", "10.222.3.0/24", "via", "10.222.3.9", "dev", testGateway, "onlink"}},
		{"ip route change of ours keeping proto 94", []string{"route", "change", "10.222.4.0/24", "via", "10.222.4.9", "dev", testGateway, "onlink", "proto", "94"}},
	} {
		n.ip(t, tc.args...)
		d := calls.waitAbove(t, before, 10*time.Second, tc.what)
		before = calls.settle(300 * time.Millisecond)
		t.Logf("%s: onChange after %v", tc.what, d)
	}
}

// burstRoutes is the size of the bursts below: the order of a large
// cluster's Node count.
const burstRoutes = 1000

// burstDst returns the i-th destination of a burst and its gateway.
func burstDst(i int) (*net.IPNet, net.IP) {
	a, b := byte(100+i/256), byte(i%256)
	return &net.IPNet{IP: net.IPv4(10, a, b, 0).To4(), Mask: net.CIDRMask(24, 32)}, net.IPv4(10, a, b, 1).To4()
}

func addBurst(t *testing.T, c *Client) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range burstRoutes {
		dst, gw := burstDst(i)
		if err := c.EnsureRoute(dst, gw); err != nil {
			t.Fatalf("EnsureRoute(%s): %v", dst, err)
		}
	}
	return time.Since(start)
}

// TestWatchRoutesBurst checks that a burst of notifications costs a handful
// of onChange calls: adds of ours (ignored), deletes of ours one netlink
// request at a time, and `ip route flush`, which deletes faster than the
// notifications are read and can overflow the socket buffer (the overflow
// path then resubscribes and calls onChange once).
func TestWatchRoutesBurst(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	calls := newCallCounter()
	w, subscribed := testWatcher(calls.onChange)
	overflows, _ := recordErrors(w)
	startWatch(t, w, &n.ns)
	waitSubscribed(t, subscribed)

	check := func(what string, elapsed time.Duration, before int64) int64 {
		t.Helper()
		total := calls.settle(500 * time.Millisecond)
		got := total - before
		t.Logf("%s, %d routes in %v: %d onChange calls (overflows so far: %d)", what, burstRoutes, elapsed, got, overflows.Load())
		if got >= 50 {
			t.Errorf("%s: %d onChange calls for %d routes, want < 50", what, got, burstRoutes)
		}
		return total
	}

	total := check("EnsureRoute adds", addBurst(t, c), 0)

	start := time.Now()
	for i := range burstRoutes {
		dst, gw := burstDst(i)
		r := &netlink.Route{Dst: dst, Gw: gw, Protocol: Protocol, Table: unix.RT_TABLE_MAIN}
		if err := n.handle.RouteDel(r); err != nil {
			t.Fatalf("delete %s: %v", dst, err)
		}
	}
	elapsed := time.Since(start)
	calls.waitAbove(t, total, 10*time.Second, "netlink deletes")
	total = check("netlink deletes", elapsed, total)

	addBurst(t, c)
	total = calls.settle(500 * time.Millisecond)
	start = time.Now()
	n.ip(t, "route", "flush", "proto", "94")
	elapsed = time.Since(start)
	if routes, err := c.ListRoutes(); err != nil || len(routes) != 0 {
		t.Fatalf("after the flush: ListRoutes = %d routes, %v", len(routes), err)
	}
	calls.waitAbove(t, total, 10*time.Second, "ip route flush proto 94")
	check("ip route flush proto 94", elapsed, total)
}

// TestWatchRoutesKernelOverflow makes the kernel drop notifications: the
// first subscription's socket gets the smallest receive buffer and is not
// read while burstRoutes routes are added. The watcher must see ENOBUFS,
// resubscribe, call onChange, and then follow changes again.
func TestWatchRoutesKernelOverflow(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	calls := newCallCounter()
	w, subscribed := testWatcher(calls.onChange)

	gate := make(chan struct{})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	var (
		mu         sync.Mutex
		reported   []error
		subscribes int
	)
	realSubscribe := w.subscribe
	w.subscribe = func(ch chan<- netlink.RouteUpdate, done <-chan struct{}, opts netlink.RouteSubscribeOptions) error {
		mu.Lock()
		subscribes++
		first := subscribes == 1
		mu.Unlock()
		cb := opts.ErrorCallback
		opts.ErrorCallback = func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
			cb(err)
		}
		if !first {
			return realSubscribe(ch, done, opts)
		}
		// The kernel raises a buffer this small to its minimum, a
		// few KiB: a handful of notifications.
		opts.ReceiveBufferSize = 1
		inner := make(chan netlink.RouteUpdate)
		go func() {
			// The library's reader blocks on inner until the gate
			// opens, leaving the socket unread.
			<-gate
			for u := range inner {
				ch <- u
			}
			close(ch)
		}()
		return realSubscribe(inner, done, opts)
	}
	startWatch(t, w, &n.ns)
	waitSubscribed(t, subscribed)

	addBurst(t, c)
	release()
	waitSubscribed(t, subscribed)
	d := calls.waitAbove(t, 0, 10*time.Second, "after the overflow")
	mu.Lock()
	errs := slices.Clone(reported)
	mu.Unlock()
	if len(errs) == 0 || !isOverflow(errs[0]) {
		t.Fatalf("errors reported by the subscription: %v, want ENOBUFS first", errs)
	}
	t.Logf("subscription error: %v; resubscribed, onChange %v after opening the gate", errs[0], d)

	before := calls.settle(300 * time.Millisecond)
	n.ip(t, "route", "del", "10.100.7.0/24")
	calls.waitAbove(t, before, 10*time.Second, "route deleted after resubscribing")
	mu.Lock()
	defer mu.Unlock()
	if subscribes != 2 {
		t.Errorf("%d subscriptions, want 2", subscribes)
	}
}

// TestWatchRoutesRepair is the end-to-end case: onChange restores the
// wanted routes (a small reconcile, like the controller's), and a route
// deleted by hand comes back. It logs the time from the start of
// `ip route del` until the route is seen again; the bound is loose on
// purpose, the figure is what matters.
func TestWatchRoutesRepair(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	wanted := []Route{
		{Dst: testsupport.MustCIDR("10.222.2.0/24"), Gateway: net.ParseIP("10.222.2.1").To4()},
		{Dst: testsupport.MustCIDR("10.222.3.0/24"), Gateway: net.ParseIP("10.222.3.1").To4()},
		{Dst: testsupport.MustCIDR("fd00:10:222:2::/64"), Gateway: net.ParseIP("fd00:10:222:2::1")},
	}
	var (
		errMu   sync.Mutex
		lastErr error
	)
	reconcile := func() {
		have, err := c.ListRoutes()
		if err == nil {
			for _, r := range wanted {
				if !slices.ContainsFunc(have, func(h Route) bool {
					return h.Dst.String() == r.Dst.String() && h.Gateway.Equal(r.Gateway)
				}) {
					err = errors.Join(err, c.EnsureRoute(r.Dst, r.Gateway))
				}
			}
		}
		errMu.Lock()
		lastErr = err
		errMu.Unlock()
	}
	reconcile()
	calls := newCallCounter()
	w, subscribed := testWatcher(func() {
		reconcile()
		calls.onChange()
	})
	startWatch(t, w, &n.ns)
	waitSubscribed(t, subscribed)

	present := func(dst, gw string) bool {
		routes, err := c.ListRoutes()
		if err != nil {
			t.Fatalf("ListRoutes: %v", err)
		}
		return strings.Contains(", "+routeStrings(routes)+",", ", "+dst+" via "+gw+",")
	}
	repair := func(what, dst, gw string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		n.ip(t, args...)
		for !present(dst, gw) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: route %s via %s not restored within 10s", what, dst, gw)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return time.Since(start)
	}

	const rounds = 20
	var v4 []time.Duration
	for range rounds {
		v4 = append(v4, repair("ip route del", "10.222.2.0/24", "10.222.2.1", "route", "del", "10.222.2.0/24"))
	}
	slices.Sort(v4)
	t.Logf("ip route del 10.222.2.0/24 → restored, %d rounds: min %v, median %v, max %v", rounds, v4[0], v4[rounds/2], v4[rounds-1])
	d := repair("ip -6 route del", "fd00:10:222:2::/64", "fd00:10:222:2::1", "-6", "route", "del", "fd00:10:222:2::/64")
	t.Logf("ip -6 route del fd00:10:222:2::/64 → restored in %v", d)
	d = repair("ip route change proto 94", "10.222.3.0/24", "10.222.3.1",
		"route", "change", "10.222.3.0/24", "via", "10.222.3.9", "dev", testGateway, "onlink", "proto", "94")
	t.Logf("ip route change 10.222.3.0/24 via 10.222.3.9 proto 94 → restored in %v", d)
	before := calls.settle(300 * time.Millisecond)

	// A foreign route replacing ours is noticed but never touched: the
	// reconcile's EnsureRoute refuses it.
	n.ip(t, "route", "replace", "10.222.3.0/24", "via", "10.222.3.9", "dev", testGateway, "onlink")
	calls.waitAbove(t, before, 10*time.Second, "foreign replace")
	calls.settle(300 * time.Millisecond)
	errMu.Lock()
	err := lastErr
	errMu.Unlock()
	if !errors.Is(err, ErrForeignRoute) {
		t.Errorf("reconcile after a foreign replace: %v, want ErrForeignRoute", err)
	}
	checkOutput(t, "foreign route after the reconcile", n.ip(t, "route", "show", "10.222.3.0/24"),
		"10.222.3.0/24 via 10.222.3.9 dev antrea-gw0 onlink")
}

// TestWatchRoutesNilNamespace checks that a nil namespace means the calling
// thread's, pinned at the call: the watcher is started from a thread locked
// into the test namespace, and sees changes there.
func TestWatchRoutesNilNamespace(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")
	calls := newCallCounter()
	w, subscribed := testWatcher(calls.onChange)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime discards the thread, still in
		// the test namespace, when this goroutine ends.
		runtime.LockOSThread()
		if err := netns.Set(n.ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.name, err)
			return
		}
		errc <- w.run(ctx, nil)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("watcher: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("watcher did not return within 5s of cancel")
		}
	})
	select {
	case <-subscribed:
	case err := <-errc:
		t.Fatalf("watcher ended before subscribing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not subscribe within 10s")
	}
	n.ip(t, "route", "del", "10.222.2.0/24")
	d := calls.waitAbove(t, 0, 10*time.Second, "route deleted in the test namespace")
	t.Logf("onChange %v after the delete", d)
}
