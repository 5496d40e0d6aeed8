package route

import (
	"bytes"
	"net"
	"slices"
	"sync"
)

// Fake is an in-memory Interface for controller unit tests. The zero value
// is ready to use and it is safe for concurrent use. It validates its
// arguments like the netlink Client, so a controller test fails on input the
// kernel would reject; it never holds foreign routes (inject
// ErrForeignRoute with SetError to simulate one).
type Fake struct {
	mu       sync.Mutex
	routes   map[string]Route // keyed by Dst.String()
	errs     map[string]error // keyed by Dst.String()
	failNext error
	calls    FakeCalls
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
	if err := f.injected(dst); err != nil {
		return err
	}
	return f.putLocked(dst, gw)
}

// DeleteRoute forgets the route to dst; a missing one is not an error.
func (f *Fake) DeleteRoute(dst *net.IPNet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.Delete++
	if err := f.injected(dst); err != nil {
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
	if err := f.injected(nil); err != nil {
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

// SetError makes EnsureRoute and DeleteRoute for the destination dst (in
// the form of net.IPNet.String, e.g. "10.222.2.0/24") return err, without
// effect, until SetError is called again with a nil err.
func (f *Fake) SetError(dst string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, dst)
		return
	}
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	f.errs[dst] = err
}

// FailNext makes the next Interface call, whatever its method and
// destination, return err without effect. It takes precedence over
// SetError.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// Calls returns how many times each Interface method was called.
func (f *Fake) Calls() FakeCalls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// injected returns the error a call for dst (nil for ListRoutes) must fail
// with, consuming a FailNext error.
func (f *Fake) injected(dst *net.IPNet) error {
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	if dst != nil {
		return f.errs[dst.String()]
	}
	return nil
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
