package route

import (
	"bytes"
	"net"
	"slices"
	"sync"

	"github.com/noderoute/noderoute/internal/faults"
)

// Fake is an in-memory Interface for controller unit tests. The zero value
// is ready to use and it is safe for concurrent use. It validates its
// arguments like the netlink Client, so a controller test fails on input the
// kernel would reject; it never holds foreign routes (inject
// ErrForeignRoute for a destination to simulate one).
//
// Inject(op, err) makes the calls of op fail with err, without effect; op
// is "EnsureRoute", "DeleteRoute", "ListRoutes", faults.Any, or a
// destination in the form of net.IPNet.String (e.g. "10.222.2.0/24"),
// which fails EnsureRoute and DeleteRoute for it. InjectNext(err) fails the
// next call, whatever its method and destination.
type Fake struct {
	faults.Set
	mu     sync.Mutex
	routes map[string]Route // keyed by Dst.String()
	calls  FakeCalls
}

// FakeCalls counts the Interface calls a Fake received, including failed
// ones, so tests can assert that a resync did not rewrite anything.
type FakeCalls struct {
	Ensure, Delete, List int
}

var _ Interface = (*Fake)(nil)

// NewFake returns a Fake holding routes, e.g. stale ones left by a previous
// run. It panics on an invalid route, which is a bug in the test.
func NewFake(routes ...Route) *Fake {
	f := &Fake{}
	for _, r := range routes {
		if err := f.put(r.Dst, r.Gateway); err != nil {
			panic(err)
		}
	}
	return f
}

// EnsureRoute records dst via gw, replacing any route to dst.
func (f *Fake) EnsureRoute(dst *net.IPNet, gw net.IP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Ensure++
	if err := f.Injected("EnsureRoute", dst.String()); err != nil {
		return err
	}
	return f.putLocked(dst, gw)
}

// DeleteRoute forgets the route to dst; a missing one is not an error.
func (f *Fake) DeleteRoute(dst *net.IPNet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Delete++
	if err := f.Injected("DeleteRoute", dst.String()); err != nil {
		return err
	}
	d, err := canonicalDst(dst)
	if err != nil {
		return err
	}
	delete(f.routes, d.String())
	return nil
}

// ListRoutes returns the routes, sorted as by Routes.
func (f *Fake) ListRoutes() ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.List++
	if err := f.Injected("ListRoutes"); err != nil {
		return nil, err
	}
	return f.sortedLocked(), nil
}

// Routes returns copies of the routes held, IPv4 before IPv6, then by
// destination address and prefix length. Unlike ListRoutes it neither
// counts as a call nor fails with injected errors: it is for assertions.
func (f *Fake) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedLocked()
}

// Calls returns how many times each Interface method was called.
func (f *Fake) Calls() FakeCalls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *Fake) put(dst *net.IPNet, gw net.IP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(dst, gw)
}

func (f *Fake) putLocked(dst *net.IPNet, gw net.IP) error {
	d, err := canonicalDst(dst)
	if err != nil {
		return err
	}
	g, err := canonicalGateway(d, gw)
	if err != nil {
		return err
	}
	if f.routes == nil {
		f.routes = map[string]Route{}
	}
	f.routes[d.String()] = Route{Dst: d, Gateway: g}
	return nil
}

// sortedLocked returns deep copies, so callers cannot alter the Fake's
// state through the returned slices.
func (f *Fake) sortedLocked() []Route {
	out := make([]Route, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, Route{
			Dst:     &net.IPNet{IP: slices.Clone(r.Dst.IP), Mask: slices.Clone(r.Dst.Mask)},
			Gateway: slices.Clone(r.Gateway),
		})
	}
	slices.SortFunc(out, func(a, b Route) int {
		// Canonical IPv4 addresses are 4 bytes, IPv6 16.
		if c := len(a.Dst.IP) - len(b.Dst.IP); c != 0 {
			return c
		}
		if c := bytes.Compare(a.Dst.IP, b.Dst.IP); c != 0 {
			return c
		}
		aOnes, _ := a.Dst.Mask.Size()
		bOnes, _ := b.Dst.Mask.Size()
		return aOnes - bOnes
	})
	return out
}
