package route

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// A gateway interface set down loses its IPv4 routes without a route
// notification; WatchLinkUp reports it coming back up, and a reconcile
// then puts the route back. Another interface's flaps are not reported.
func TestWatchLinkUpRepairsRoutesAfterFlap(t *testing.T) {
	n := newWatchNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)
	dst, gw := testsupport.MustCIDR("10.222.2.0/24"), net.ParseIP("10.222.2.1").To4()
	if err := c.EnsureRoute(dst, gw); err != nil {
		t.Fatal(err)
	}
	var ups atomic.Int32
	onUp := func() {
		ups.Add(1)
		if err := c.EnsureRoute(dst, gw); err != nil {
			t.Errorf("EnsureRoute after the link came up: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- WatchLinkUp(ctx, n.namespace(), testGateway, onUp, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchLinkUp: %v", err)
		}
	})
	// WatchLinkUp offers no hook to tell it has subscribed; half a second
	// is ample here (subscribing takes well under a millisecond).
	time.Sleep(500 * time.Millisecond)
	present := func() bool {
		return strings.Contains(n.ip(t, "route", "show", "proto", "94"), "10.222.2.0/24 via 10.222.2.1")
	}

	// Another interface going up and down: nothing.
	n.ip(t, "link", "add", "other0", "type", "veth", "peer", "name", "other1")
	n.ip(t, "link", "set", "other0", "up")
	n.ip(t, "link", "set", "other0", "down")
	time.Sleep(200 * time.Millisecond)
	if got := ups.Load(); got != 0 {
		t.Fatalf("onUp called %d times for another interface", got)
	}

	for round := range 3 {
		start := time.Now()
		n.ip(t, "link", "set", testGateway, "down")
		if present() {
			t.Fatalf("round %d: the kernel kept the IPv4 route through a down interface (the case this watcher is for did not happen)", round)
		}
		n.ip(t, "link", "set", testGateway, "up")
		for !present() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("round %d: route not back 10 s after the flap (onUp called %d times)", round, ups.Load())
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("round %d: down-up flap of %s, route back %s after the down", round, testGateway, time.Since(start).Round(time.Millisecond))
	}
	if got := ups.Load(); got != 3 {
		t.Errorf("onUp called %d times for 3 flaps, want 3", got)
	}
}
