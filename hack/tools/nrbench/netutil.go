package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"sort"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routeProtocol is the agent's route protocol (pkg/route.Protocol).
const routeProtocol = 94

// maxIndex bounds i in bench-<i>: 10.128.0.0/24 .. 10.255.255.0/24.
const maxIndex = 128 * 256

// cidrOf returns the pod CIDR and gateway of bench-<i>.
func cidrOf(i int) (*net.IPNet, net.IP) {
	ip := net.IPv4(10, byte(128+i/256), byte(i%256), 0).To4()
	gw := net.IPv4(10, byte(128+i/256), byte(i%256), 1).To4()
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}, gw
}

func nodeName(i int) string { return fmt.Sprintf("bench-%d", i) }

func checkRange(start, count int) error {
	if start < 0 || count < 0 || start+count > maxIndex {
		return fmt.Errorf("bench Node indexes %d..%d out of range 0..%d", start, start+count-1, maxIndex-1)
	}
	return nil
}

// routeHandle returns a netlink handle in the network namespace at path.
func routeHandle(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	return h, nil
}

// routePresent reports whether the kernel's FIB entry for gw (ip route get
// fibmatch) is exactly cidr with our protocol: one lookup in the kernel,
// whatever the size of the table.
func routePresent(h *netlink.Handle, cidr *net.IPNet, gw net.IP) (bool, error) {
	routes, err := h.RouteGetWithOptions(gw, &netlink.RouteGetOptions{FIBMatch: true})
	if err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, err
	}
	for _, r := range routes {
		if r.Protocol == routeProtocol && r.Dst != nil && r.Dst.IP.Equal(cidr.IP) && r.Dst.Mask.String() == cidr.Mask.String() {
			return true, nil
		}
	}
	return false, nil
}

// ourRoutes dumps the routes of our protocol in the main table and returns
// their destinations. interrupted is true when the kernel flagged the dump
// as inconsistent (the table changed during it): such a dump is not a valid
// sample.
func ourRoutes(h *netlink.Handle) (dsts map[string]bool, interrupted bool, err error) {
	filter := &netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, true, nil
		}
		return nil, false, err
	}
	dsts = make(map[string]bool, len(routes))
	for _, r := range routes {
		if r.Dst != nil {
			dsts[r.Dst.String()] = true
		}
	}
	return dsts, false, nil
}

// sleepPrecise sleeps d with nanosleep(2), blocking the OS thread: Go's
// time.Sleep rounds sub-millisecond sleeps up to about a millisecond, too
// coarse for polling.
func sleepPrecise(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		var rem unix.Timespec
		if err := unix.Nanosleep(&ts, &rem); err != unix.EINTR {
			return
		}
		ts = rem
	}
}

// durations summarises samples.
type durations []time.Duration

// percentile is the nearest-rank percentile (p in 0..100).
func (d durations) percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append(durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

func (d durations) max() time.Duration { return d.percentile(100) }

func (d durations) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printDist prints p50, p90, p99, max and mean of d in milliseconds.
func printDist(prefix string, d durations) {
	result(prefix+"_n", len(d))
	result(prefix+"_p50_ms", ms(d.percentile(50)))
	result(prefix+"_p90_ms", ms(d.percentile(90)))
	result(prefix+"_p99_ms", ms(d.percentile(99)))
	result(prefix+"_max_ms", ms(d.max()))
	result(prefix+"_mean_ms", ms(d.mean()))
}
