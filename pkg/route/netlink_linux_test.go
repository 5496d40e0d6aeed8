package route

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/noderoute/noderoute/internal/testsupport"
)

const testGateway = "antrea-gw0"

// testNS is a fresh named network namespace with a netlink handle in it.
// Named, so that `ip netns exec` can look at what the code under test did.
type testNS struct {
	name   string
	ns     netns.NsHandle
	handle *netlink.Handle
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (network namespaces, netlink)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("integration test needs iproute2's ip to check the kernel's view")
	}
	tns := testsupport.NewNetNS(t, "noderoute-test-")
	name := tns.Name
	ns, err := tns.Open()
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the namespace is deleted (cleanups run last-in
	// first-out).
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in netns %s: %v", name, err)
	}
	t.Cleanup(h.Close)
	return &testNS{name: name, ns: ns, handle: h}
}

// namespace is the test namespace as the package's API takes it; the test's
// clean-up closes the handles.
func (n *testNS) namespace() *Namespace {
	return &Namespace{handle: n.handle, ns: n.ns, what: n.name}
}

// ip runs `ip netns exec <ns> ip args...` and returns its output with
// trailing spaces removed from each line (iproute2 prints "onlink " with a
// trailing space).
func (n *testNS) ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n")
}

var dummyUnsupported atomic.Bool

// createGatewayLink creates the gateway interface, down and without
// addresses. It is a dummy link where the kernel has the dummy driver; some
// kernels (e.g. minimal VM kernels) lack it, and then an ifb link stands in:
// it too is a single software device whose carrier is on once it is up,
// which is all the routes need. It does not use t, so that a goroutine can
// call it.
func (n *testNS) createGatewayLink() error {
	attrs := netlink.LinkAttrs{Name: testGateway}
	if !dummyUnsupported.Load() {
		err := n.handle.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		dummyUnsupported.Store(true)
	}
	return n.handle.LinkAdd(&netlink.Ifb{LinkAttrs: attrs})
}

// addGatewayLink creates the gateway interface, up, with addrs, and returns
// its ifindex.
func (n *testNS) addGatewayLink(t *testing.T, addrs ...string) int {
	t.Helper()
	if err := n.createGatewayLink(); err != nil {
		t.Fatalf("add link %s: %v", testGateway, err)
	}
	if dummyUnsupported.Load() {
		t.Log("kernel has no dummy link driver, using ifb for the gateway interface")
	}
	link, err := n.handle.LinkByName(testGateway)
	if err != nil {
		t.Fatalf("look up link %s: %v", testGateway, err)
	}
	if err := n.handle.LinkSetUp(link); err != nil {
		t.Fatalf("set %s up: %v", testGateway, err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.handle.AddrAdd(link, addr); err != nil {
			t.Fatalf("add %s to %s: %v", a, testGateway, err)
		}
	}
	return link.Attrs().Index
}

func (n *testNS) deleteGatewayLink(t *testing.T) {
	t.Helper()
	link, err := n.handle.LinkByName(testGateway)
	if err != nil {
		t.Fatalf("look up link %s: %v", testGateway, err)
	}
	if err := n.handle.LinkDel(link); err != nil {
		t.Fatalf("delete link %s: %v", testGateway, err)
	}
}

func mustEnsure(t *testing.T, c Interface, dst, gw string) {
	t.Helper()
	if err := c.EnsureRoute(testsupport.MustCIDR(dst), net.ParseIP(gw)); err != nil {
		t.Fatalf("EnsureRoute(%s, %s): %v", dst, gw, err)
	}
}

func mustDelete(t *testing.T, c Interface, dst string) {
	t.Helper()
	if err := c.DeleteRoute(testsupport.MustCIDR(dst)); err != nil {
		t.Fatalf("DeleteRoute(%s): %v", dst, err)
	}
}

func checkListed(t *testing.T, c Interface, want string) {
	t.Helper()
	routes, err := c.ListRoutes()
	if err != nil {
		t.Fatalf("ListRoutes: %v", err)
	}
	if got := routeStrings(routes); got != want {
		t.Fatalf("ListRoutes() = %q\nwant %q", got, want)
	}
}

func checkOutput(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, got, want)
	}
}

func TestClientRoutes(t *testing.T) {
	n := newTestNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")
	c := NewClient(n.namespace(), testGateway)

	routes, err := c.ListRoutes()
	if err != nil || len(routes) != 0 {
		t.Fatalf("ListRoutes() with no routes = %v, %v; want empty, nil", routes, err)
	}

	mustEnsure(t, c, "10.222.0.0/24", "10.222.0.1")
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")
	// What iproute2 6.1 prints (it has no name for protocol 94, so it
	// shows the number; each route line ends in "onlink " with a trailing
	// space, trimmed by n.ip):
	//   10.222.0.0/24 via 10.222.0.1 dev antrea-gw0 proto 94 onlink
	//   10.222.1.0/24 dev antrea-gw0 proto kernel scope link src 10.222.1.1
	//   10.222.2.0/24 via 10.222.2.1 dev antrea-gw0 proto 94 onlink
	want := strings.Join([]string{
		"10.222.0.0/24 via 10.222.0.1 dev antrea-gw0 proto 94 onlink",
		"10.222.1.0/24 dev antrea-gw0 proto kernel scope link src 10.222.1.1",
		"10.222.2.0/24 via 10.222.2.1 dev antrea-gw0 proto 94 onlink",
	}, "\n")
	checkOutput(t, "ip route", n.ip(t, "route"), want)

	// Idempotent: same table, no error, no duplicate.
	mustEnsure(t, c, "10.222.0.0/24", "10.222.0.1")
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")
	checkOutput(t, "ip route after ensuring again", n.ip(t, "route"), want)

	// A changed gateway replaces the route rather than adding one.
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.254")
	checkOutput(t, "ip route after changing the gateway", n.ip(t, "route", "show", "10.222.2.0/24"),
		"10.222.2.0/24 via 10.222.2.254 dev antrea-gw0 proto 94 onlink")
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")

	// A foreign route (protocol boot, iproute2's default, which it does
	// not print) is not listed and DeleteRoute of its destination leaves
	// it alone.
	n.ip(t, "route", "add", "10.99.0.0/24", "via", "10.222.0.1", "dev", testGateway, "onlink")
	checkListed(t, c, "10.222.0.0/24 via 10.222.0.1, 10.222.2.0/24 via 10.222.2.1")
	mustDelete(t, c, "10.99.0.0/24")
	checkOutput(t, "foreign route after DeleteRoute", n.ip(t, "route", "show", "10.99.0.0/24"),
		"10.99.0.0/24 via 10.222.0.1 dev antrea-gw0 onlink")

	// A foreign route to the same destination at the metric ours would
	// take: EnsureRoute refuses to replace it, DeleteRoute leaves it.
	n.ip(t, "route", "add", "10.98.0.0/24", "dev", testGateway, "proto", "static")
	err = c.EnsureRoute(testsupport.MustCIDR("10.98.0.0/24"), net.ParseIP("10.98.0.1"))
	if !errors.Is(err, ErrForeignRoute) {
		t.Fatalf("EnsureRoute over a foreign route = %v, want ErrForeignRoute", err)
	}
	mustDelete(t, c, "10.98.0.0/24")
	checkOutput(t, "foreign route after EnsureRoute and DeleteRoute", n.ip(t, "route", "show", "10.98.0.0/24"),
		"10.98.0.0/24 dev antrea-gw0 proto static scope link")

	// A foreign route to the same destination at another metric coexists
	// with ours, and DeleteRoute removes only ours.
	n.ip(t, "route", "add", "10.97.0.0/24", "dev", testGateway, "proto", "static", "metric", "100")
	mustEnsure(t, c, "10.97.0.0/24", "10.97.0.1")
	checkOutput(t, "ours next to a foreign route", n.ip(t, "route", "show", "10.97.0.0/24"), strings.Join([]string{
		"10.97.0.0/24 via 10.97.0.1 dev antrea-gw0 proto 94 onlink",
		"10.97.0.0/24 dev antrea-gw0 proto static scope link metric 100",
	}, "\n"))
	mustDelete(t, c, "10.97.0.0/24")
	checkOutput(t, "foreign route after DeleteRoute of ours", n.ip(t, "route", "show", "10.97.0.0/24"),
		"10.97.0.0/24 dev antrea-gw0 proto static scope link metric 100")

	// Our protocol in another table is not ours to list or delete: the
	// client works on the main table only.
	n.ip(t, "route", "add", "10.96.0.0/24", "dev", testGateway, "proto", "94", "table", "100")
	checkListed(t, c, "10.222.0.0/24 via 10.222.0.1, 10.222.2.0/24 via 10.222.2.1")
	mustDelete(t, c, "10.96.0.0/24")
	checkOutput(t, "table 100 after DeleteRoute", n.ip(t, "route", "show", "table", "100"),
		"10.96.0.0/24 dev antrea-gw0 proto 94 scope link")

	// DeleteRoute of ours removes it; of a missing route is a no-op.
	mustDelete(t, c, "10.222.0.0/24")
	mustDelete(t, c, "10.222.0.0/24")
	mustDelete(t, c, "10.222.200.0/24")
	checkOutput(t, "ip route after DeleteRoute", n.ip(t, "route"), strings.Join([]string{
		"10.97.0.0/24 dev antrea-gw0 proto static scope link metric 100",
		"10.98.0.0/24 dev antrea-gw0 proto static scope link",
		"10.99.0.0/24 via 10.222.0.1 dev antrea-gw0 onlink",
		"10.222.1.0/24 dev antrea-gw0 proto kernel scope link src 10.222.1.1",
		"10.222.2.0/24 via 10.222.2.1 dev antrea-gw0 proto 94 onlink",
	}, "\n"))

	// IPv6 works the same way and is listed after IPv4.
	mustEnsure(t, c, "fd00:10:222:2::/64", "fd00:10:222:2::1")
	mustEnsure(t, c, "fd00:10:222:2::/64", "fd00:10:222:2::1")
	checkOutput(t, "ip -6 route", n.ip(t, "-6", "route", "show", "proto", "94"),
		"fd00:10:222:2::/64 via fd00:10:222:2::1 dev antrea-gw0 metric 1024 onlink pref medium")
	checkListed(t, c, "10.222.2.0/24 via 10.222.2.1, fd00:10:222:2::/64 via fd00:10:222:2::1")
	mustDelete(t, c, "fd00:10:222:2::/64")
	checkOutput(t, "ip -6 route after DeleteRoute", n.ip(t, "-6", "route", "show", "proto", "94"), "")

	checkListed(t, c, "10.222.2.0/24 via 10.222.2.1")
}

func TestClientGatewayRecreated(t *testing.T) {
	n := newTestNS(t)
	c := NewClient(n.namespace(), testGateway)

	err := c.EnsureRoute(testsupport.MustCIDR("10.222.0.0/24"), net.ParseIP("10.222.0.1"))
	if err == nil || !strings.Contains(err.Error(), testGateway) {
		t.Fatalf("EnsureRoute without the gateway interface = %v, want an error naming %s", err, testGateway)
	}

	oldIndex := n.addGatewayLink(t, "10.222.1.1/24")
	mustEnsure(t, c, "10.222.0.0/24", "10.222.0.1")

	// What an OVS restart does to the internal port: the interface goes
	// away, taking its routes with it, and comes back with a new ifindex.
	n.deleteGatewayLink(t)
	newIndex := n.addGatewayLink(t, "10.222.1.1/24")
	if newIndex == oldIndex {
		t.Fatalf("recreated link kept ifindex %d; the test needs a new one", oldIndex)
	}
	checkListed(t, c, "")

	// The client still has the old index cached: the route op fails with
	// ENODEV, the name is resolved again and the op retried.
	mustEnsure(t, c, "10.222.0.0/24", "10.222.0.1")
	mustEnsure(t, c, "10.222.2.0/24", "10.222.2.1")
	checkOutput(t, "ip route after recreating the gateway", n.ip(t, "route", "show", "proto", "94"), strings.Join([]string{
		"10.222.0.0/24 via 10.222.0.1 dev antrea-gw0 onlink",
		"10.222.2.0/24 via 10.222.2.1 dev antrea-gw0 onlink",
	}, "\n"))
	if c.linkIndex != newIndex {
		t.Fatalf("cached ifindex %d, want the new %d", c.linkIndex, newIndex)
	}
	routes, err := n.handle.RouteListFiltered(netlink.FAMILY_V4, ownFilter(), ownFilterMask)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.LinkIndex != newIndex {
			t.Fatalf("route %s is on ifindex %d, want the new %d", r.Dst, r.LinkIndex, newIndex)
		}
	}
}

// TestCurrentNamespace checks that CurrentNamespace is the calling thread's
// namespace, by calling from a thread switched into the test namespace (so
// that the host's routes are never touched).
func TestCurrentNamespace(t *testing.T) {
	n := newTestNS(t)
	n.addGatewayLink(t, "10.222.1.1/24")

	errc := make(chan error, 1)
	go func() {
		// The thread is locked and never unlocked, so the runtime
		// discards it, still in the test namespace, when this
		// goroutine ends.
		runtime.LockOSThread()
		if err := netns.Set(n.ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.name, err)
			return
		}
		cur, err := CurrentNamespace()
		if err != nil {
			errc <- err
			return
		}
		defer cur.Close()
		c := NewClient(cur, testGateway)
		// Built by hand, not parsed: this runs off the test
		// goroutine, where a failed parse could not fail the test.
		dst := &net.IPNet{IP: net.IPv4(10, 222, 2, 0).To4(), Mask: net.CIDRMask(24, 32)}
		if err := c.EnsureRoute(dst, net.ParseIP("10.222.2.1")); err != nil {
			errc <- err
			return
		}
		if err := ConfigureGateway(cur, testGateway, nil, 0); err != nil {
			errc <- err
			return
		}
		routes, err := c.ListRoutes()
		if err == nil && routeStrings(routes) != "10.222.2.0/24 via 10.222.2.1" {
			err = fmt.Errorf("ListRoutes() = %q", routeStrings(routes))
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkOutput(t, "ip route", n.ip(t, "route", "show", "10.222.2.0/24"),
		"10.222.2.0/24 via 10.222.2.1 dev antrea-gw0 proto 94 onlink")
}

func TestConfigureGatewayWaitsForLink(t *testing.T) {
	n := newTestNS(t)
	addrs := []string{"10.222.1.1/24", "fd00:10:222:1::1/64"}
	var ipNets []*net.IPNet
	for _, a := range addrs {
		ipNet, err := netlink.ParseIPNet(a)
		if err != nil {
			t.Fatal(err)
		}
		ipNets = append(ipNets, ipNet)
	}

	// OVS creates the internal port's interface some time after the port
	// is in OVSDB; here 300ms after ConfigureGateway starts. The link is
	// created down, without addresses.
	const delay = 300 * time.Millisecond
	created := make(chan error, 1)
	go func() {
		time.Sleep(delay)
		created <- n.createGatewayLink()
	}()
	start := time.Now()
	err := ConfigureGateway(n.namespace(), testGateway, ipNets, 5*time.Second)
	elapsed := time.Since(start)
	if err := <-created; err != nil {
		t.Fatalf("create %s: %v", testGateway, err)
	}
	if err != nil {
		t.Fatalf("ConfigureGateway: %v", err)
	}
	if elapsed < delay {
		t.Fatalf("ConfigureGateway returned after %v, before the link was created", elapsed)
	}
	t.Logf("ConfigureGateway returned %v after the call, link created after %v", elapsed, delay)

	// An address the agent does not own, in a family it configures.
	link, err := n.handle.LinkByName(testGateway)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := n.handle.AddrAdd(link, foreign); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := ConfigureGateway(n.namespace(), testGateway, ipNets, time.Second); err != nil {
		t.Fatalf("ConfigureGateway again: %v", err)
	}

	link, err = n.handle.LinkByName(testGateway)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("%s is not up", testGateway)
	}
	got, err := n.handle.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var gotStrings []string
	for _, a := range got {
		if a.IP.IsLinkLocalUnicast() {
			continue // the kernel's fe80:: address
		}
		gotStrings = append(gotStrings, a.IPNet.String())
		if a.IP.To4() == nil {
			if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("address %s has flags %#x, want nodad and not tentative", a.IPNet, a.Flags)
			}
		}
	}
	slices.Sort(gotStrings)
	want := []string{"10.222.1.1/24", "192.0.2.1/24", "fd00:10:222:1::1/64"}
	if !slices.Equal(gotStrings, want) {
		t.Fatalf("addresses on %s = %v, want %v", testGateway, gotStrings, want)
	}
	t.Logf("ip addr show:\n%s", n.ip(t, "addr", "show", "dev", testGateway))
}

// An IPv6 gateway address on an interface with IPv6 turned off fails with an
// error that says so and names the sysctl to change.
func TestConfigureGatewayIPv6Disabled(t *testing.T) {
	n := newTestNS(t)
	if err := n.createGatewayLink(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", n.name, "sysctl", "-qw", "net.ipv6.conf."+testGateway+".disable_ipv6=1").CombinedOutput()
	if err != nil {
		t.Skipf("cannot turn IPv6 off on %s: %v %s", testGateway, err, out)
	}
	addr, _ := netlink.ParseIPNet("fd00:10:222:1::1/64")
	err = ConfigureGateway(n.namespace(), testGateway, []*net.IPNet{addr}, time.Second)
	if err == nil || !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "net.ipv6.conf."+testGateway+".disable_ipv6=0") {
		t.Fatalf("ConfigureGateway with IPv6 disabled: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestConfigureGatewayTimeout(t *testing.T) {
	n := newTestNS(t)
	addr, _ := netlink.ParseIPNet("10.222.1.1/24")
	const timeout = 200 * time.Millisecond
	start := time.Now()
	err := ConfigureGateway(n.namespace(), testGateway, []*net.IPNet{addr}, timeout)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("ConfigureGateway succeeded without the link")
	}
	t.Logf("error: %v", err)
	for _, s := range []string{testGateway, timeout.String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("ConfigureGateway gave up after %v, want about %v", elapsed, timeout)
	}
}
