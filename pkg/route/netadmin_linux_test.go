package route

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// netAdminChildEnv makes TestNetAdminOnlyChild run: it is the child
// process of TestWatchersNeedOnlyNetAdmin, not a test of its own.
const netAdminChildEnv = "NODEROUTE_TEST_NET_ADMIN_ONLY_CHILD"

// netAdminOnly is how hack/local-cluster.sh confines an agent (and what
// the DaemonSet's securityContext gives it): root, bounding set NET_ADMIN
// alone, nothing inheritable or ambient, no_new_privs.
var netAdminOnly = []string{"setpriv", "--bounding-set=-all,+net_admin", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs", "--"}

// TestWatchersNeedOnlyNetAdmin runs WatchRoutes and WatchLinkUp as the agent
// does, without a namespace (the current one), in a process whose only
// capability is CAP_NET_ADMIN: this test binary again, started inside a
// test namespace (`ip netns exec`, which needs CAP_SYS_ADMIN, comes before
// the confinement, as in the local cluster) under setpriv. The child,
// TestNetAdminOnlyChild, deletes a route and flaps the gateway interface
// and requires both repaired through the watchers.
func TestWatchersNeedOnlyNetAdmin(t *testing.T) {
	n := newWatchNS(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		testsupport.SkipOrFatal(t, "needs util-linux's setpriv")
	}
	n.addGatewayLink(t, "10.222.1.1/24")
	args := append([]string{"netns", "exec", n.name}, netAdminOnly...)
	args = append(args, os.Args[0], "-test.run=^TestNetAdminOnlyChild$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), netAdminChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child (ip %s):\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	// A child that ran nothing (a renamed test) must not pass for one
	// that checked.
	if !strings.Contains(string(out), "--- PASS: TestNetAdminOnlyChild") {
		t.Fatal("the child did not run TestNetAdminOnlyChild")
	}
	// Whatever the child logged through klog goes to its stderr: a
	// subscription failure would show here even if retried in time.
	for _, bad := range []string{"subscription failed", "not permitted", "Cannot read the interface"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("the child logged %q", bad)
		}
	}
}

// TestNetAdminOnlyChild is the confined half of TestWatchersNeedOnlyNetAdmin.
func TestNetAdminOnlyChild(t *testing.T) {
	if os.Getenv(netAdminChildEnv) != "1" {
		t.Skip("the child of TestWatchersNeedOnlyNetAdmin")
	}
	// The confinement is real: NET_ADMIN alone, and setns into its own
	// namespace (what the library did when given a handle on it) refused.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "\nCapEff:\t0000000000001000\n") {
		t.Fatalf("not confined to NET_ADMIN:\n%s", status)
	}
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		own, err := netns.Get()
		if err != nil {
			t.Fatalf("own network namespace: %v", err)
		}
		defer own.Close()
		if err := netns.Set(own); !errors.Is(err, unix.EPERM) {
			t.Fatalf("setns into its own namespace: %v, want EPERM (without CAP_SYS_ADMIN)", err)
		}
	}()

	cur, err := CurrentNamespace()
	if err != nil {
		t.Fatalf("current namespace with NET_ADMIN: %v", err)
	}
	defer cur.Close()
	c := NewClient(cur, testGateway)
	dst, gw := testsupport.MustCIDR("10.222.2.0/24"), net.ParseIP("10.222.2.1").To4()
	if err := c.EnsureRoute(dst, gw); err != nil {
		t.Fatalf("EnsureRoute with NET_ADMIN: %v", err)
	}
	var repairs atomic.Int32
	repair := func() {
		repairs.Add(1)
		if err := c.EnsureRoute(dst, gw); err != nil {
			t.Errorf("repair: %v", err)
		}
	}
	present := func() bool {
		routes, err := c.ListRoutes()
		if err != nil {
			t.Fatalf("list routes: %v", err)
		}
		for _, r := range routes {
			if r.Dst.String() == dst.String() {
				return true
			}
		}
		return false
	}
	ip := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	waitBack := func(what string, start time.Time) {
		for !present() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: route not back within 10 s (repairs: %d)", what, repairs.Load())
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("%s: route back %v after it went", what, time.Since(start).Round(time.Millisecond))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routesUp, linkUp := make(chan bool, 16), make(chan bool, 16)
	report := func(ch chan bool) func(bool) {
		return func(running bool) {
			select {
			case ch <- running:
			default:
			}
		}
	}
	routeErr, linkErr := make(chan error, 1), make(chan error, 1)
	go func() { routeErr <- WatchRoutes(ctx, cur, repair, report(routesUp)) }()
	go func() { linkErr <- WatchLinkUp(ctx, cur, testGateway, repair, report(linkUp)) }()
	for _, w := range []struct {
		name    string
		running chan bool
		err     chan error
	}{{"route watcher", routesUp, routeErr}, {"link watcher", linkUp, linkErr}} {
		select {
		case r := <-w.running:
			if !r {
				select {
				case err := <-w.err:
					t.Fatalf("%s not running: %v", w.name, err)
				case <-time.After(time.Second):
					t.Fatalf("%s not running (its subscription failed)", w.name)
				}
			}
		case err := <-w.err:
			t.Fatalf("%s ended: %v", w.name, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not subscribed within 10 s", w.name)
		}
	}

	start := time.Now()
	ip("route", "del", dst.String())
	waitBack("route deleted by hand", start)

	before := repairs.Load()
	start = time.Now()
	ip("link", "set", testGateway, "down")
	if present() {
		t.Fatal("the kernel kept the IPv4 route through a down interface (the case the link watcher is for did not happen)")
	}
	ip("link", "set", testGateway, "up")
	waitBack("gateway interface down and up", start)
	if repairs.Load() == before {
		t.Error("route back without a repair")
	}

	cancel()
	for name, ch := range map[string]chan error{"WatchRoutes": routeErr, "WatchLinkUp": linkErr} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
