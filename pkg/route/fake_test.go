package route

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// routeStrings renders routes as "dst via gw" for compact comparisons.
func routeStrings(routes []Route) string {
	var b strings.Builder
	for i, r := range routes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s via %s", r.Dst, r.Gateway)
	}
	return b.String()
}

func TestFakeEnsureDeleteList(t *testing.T) {
	f := NewFake(Route{Dst: testsupport.MustCIDR("10.222.9.0/24"), Gateway: net.ParseIP("10.222.9.1")})

	for _, r := range []struct{ dst, gw string }{
		{"fd00:10:222:2::/64", "fd00:10:222:2::1"},
		{"10.222.10.0/24", "10.222.10.1"},
		{"10.222.2.0/24", "10.222.2.1"},
		{"10.222.2.0/24", "10.222.2.1"},   // idempotent
		{"10.222.9.0/24", "10.222.9.254"}, // replaces
	} {
		if err := f.EnsureRoute(testsupport.MustCIDR(r.dst), net.ParseIP(r.gw)); err != nil {
			t.Fatalf("EnsureRoute(%s, %s): %v", r.dst, r.gw, err)
		}
	}
	want := "10.222.2.0/24 via 10.222.2.1, 10.222.9.0/24 via 10.222.9.254, 10.222.10.0/24 via 10.222.10.1, fd00:10:222:2::/64 via fd00:10:222:2::1"
	if got := routeStrings(f.Routes()); got != want {
		t.Fatalf("Routes() = %s\nwant %s", got, want)
	}

	if err := f.DeleteRoute(testsupport.MustCIDR("10.222.9.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteRoute(testsupport.MustCIDR("10.99.0.0/24")); err != nil {
		t.Fatalf("DeleteRoute of a missing route: %v", err)
	}
	listed, err := f.ListRoutes()
	if err != nil {
		t.Fatal(err)
	}
	want = "10.222.2.0/24 via 10.222.2.1, 10.222.10.0/24 via 10.222.10.1, fd00:10:222:2::/64 via fd00:10:222:2::1"
	if got := routeStrings(listed); got != want {
		t.Fatalf("ListRoutes() = %s\nwant %s", got, want)
	}

	// The returned routes are copies.
	listed[0].Gateway[3] = 99
	if got := f.Routes()[0].Gateway.String(); got != "10.222.2.1" {
		t.Fatalf("Fake state changed through a returned route: gateway %s", got)
	}

	if got, want := f.Calls(), (FakeCalls{Ensure: 5, Delete: 2, List: 1}); got != want {
		t.Fatalf("Calls() = %+v, want %+v", got, want)
	}
}

func TestFakeEmptyList(t *testing.T) {
	var f Fake // the zero value works
	routes, err := f.ListRoutes()
	if err != nil || len(routes) != 0 {
		t.Fatalf("ListRoutes() = %v, %v; want empty, nil", routes, err)
	}
}

func TestFakeRejectsInvalidRoutes(t *testing.T) {
	f := NewFake()
	for _, tc := range []struct {
		name string
		dst  *net.IPNet
		gw   net.IP
	}{
		{"nil dst", nil, net.ParseIP("10.0.0.1")},
		{"nil gateway", testsupport.MustCIDR("10.0.0.0/24"), nil},
		{"host bits", &net.IPNet{IP: net.ParseIP("10.0.0.1"), Mask: net.CIDRMask(24, 32)}, net.ParseIP("10.0.0.1")},
		{"v6 gateway for v4 dst", testsupport.MustCIDR("10.0.0.0/24"), net.ParseIP("fd00::1")},
		{"v4 gateway for v6 dst", testsupport.MustCIDR("fd00::/64"), net.ParseIP("10.0.0.1")},
	} {
		if err := f.EnsureRoute(tc.dst, tc.gw); err == nil {
			t.Errorf("%s: EnsureRoute succeeded, want an error", tc.name)
		}
	}
	if len(f.Routes()) != 0 {
		t.Fatalf("invalid routes were stored: %s", routeStrings(f.Routes()))
	}
}

func TestFakeErrorInjection(t *testing.T) {
	f := NewFake()
	dst := testsupport.MustCIDR("10.222.2.0/24")
	gw := net.ParseIP("10.222.2.1")
	boom := errors.New("boom")

	f.InjectNext(boom)
	if err := f.EnsureRoute(dst, gw); !errors.Is(err, boom) {
		t.Fatalf("EnsureRoute after InjectNext = %v, want boom", err)
	}
	if len(f.Routes()) != 0 {
		t.Fatal("a failed EnsureRoute had an effect")
	}
	if err := f.EnsureRoute(dst, gw); err != nil {
		t.Fatalf("InjectNext fired twice: %v", err)
	}

	f.Inject("10.222.2.0/24", ErrForeignRoute)
	if err := f.EnsureRoute(dst, gw); !errors.Is(err, ErrForeignRoute) {
		t.Fatalf("EnsureRoute = %v, want ErrForeignRoute", err)
	}
	if err := f.DeleteRoute(dst); !errors.Is(err, ErrForeignRoute) {
		t.Fatalf("DeleteRoute = %v, want ErrForeignRoute", err)
	}
	if err := f.EnsureRoute(testsupport.MustCIDR("10.222.3.0/24"), net.ParseIP("10.222.3.1")); err != nil {
		t.Fatalf("Inject leaked to another destination: %v", err)
	}
	f.Inject("10.222.2.0/24", nil)
	if err := f.DeleteRoute(dst); err != nil {
		t.Fatalf("DeleteRoute after clearing the error: %v", err)
	}

	f.InjectNext(boom)
	if _, err := f.ListRoutes(); !errors.Is(err, boom) {
		t.Fatalf("ListRoutes after InjectNext = %v, want boom", err)
	}
	if got := routeStrings(f.Routes()); got != "10.222.3.0/24 via 10.222.3.1" {
		t.Fatalf("Routes() = %s", got)
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			// Built by hand, not parsed: this runs off the test
			// goroutine, where a failed parse could not fail the test.
			dst := &net.IPNet{IP: net.IPv4(10, 222, byte(i), 0), Mask: net.CIDRMask(24, 32)}
			gw := net.IPv4(10, 222, byte(i), 1)
			if err := f.EnsureRoute(dst, gw); err != nil {
				t.Error(err)
			}
			if _, err := f.ListRoutes(); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				if err := f.DeleteRoute(dst); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := len(f.Routes()); got != 25 {
		t.Fatalf("%d routes left, want 25", got)
	}
}
