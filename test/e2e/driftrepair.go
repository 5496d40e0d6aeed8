//go:build e2e

package e2e

// Drift repair through the agent's netlink watchers: a route of
// ours deleted by hand and a gateway interface flap must be repaired by the
// route and link watchers, not by the periodic resync, and the watchers
// must not fail. checkWatcherRepair is written against the provider
// interface so that every provider's NET_ADMIN-only run can call it.

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agentObserver is what checkWatcherRepair needs beyond Provider: the
// running agent's log and metrics.
type agentObserver interface {
	Provider
	// AgentLog returns what the agent now running on node has logged
	// since it started (not what earlier agents of the node logged).
	AgentLog(ctx context.Context, node string) (string, error)
	// AgentMetrics returns the agent's /metrics, in the Prometheus text
	// format.
	AgentMetrics(ctx context.Context, node string) (string, error)
}

// watcherRepairBound is the pass/fail bound for a repair through a
// watcher. Generous on purpose (the machine is a noisy 2-core box): the
// watchers repair in well under a second, and the fallback they are told
// apart from, the periodic resync, comes every minute.
const watcherRepairBound = 5 * time.Second

// watcherErrorRE matches the log lines of a watcher in trouble: klog error
// lines of the route and link watchers (pkg/route) and of the drift
// repair's start (pkg/agent), and EPERM from anywhere.
var watcherErrorRE = regexp.MustCompile(`(?m)^E\d{4} .*(?i:subscription|watcher).*$|^.*operation not permitted.*$`)

// measureRouteRepair deletes one route of ours on node (fam: -4 or -6) and
// returns how long it took to come back, measured in the node itself so
// that exec overhead does not count. It waits longer than the periodic
// resync (1 minute by default), so that a failing run still says when the
// route came back.
const measureRouteRepair = `
fam=$1 dst=$2
ip "$fam" route del "$dst" proto 94 dev antrea-gw0 || exit 2
s=$(date +%s%N)
until ip "$fam" route show to exact "$dst" proto 94 | grep -q .; do
  [ $(( $(date +%s%N) - s )) -lt 90000000000 ] || { echo "not back after 90 s"; exit 1; }
done
echo $(( $(date +%s%N) - s ))
`

// measureFlapRepair sets the gateway interface down and up at once and
// returns the number of IPv4 routes of ours left while it was down (the
// kernel drops them without a notification, so 0) and how long after the
// down it took for every route of ours, both families, to be back.
const measureFlapRepair = `
n4=$(ip -4 route show proto 94 dev antrea-gw0 | wc -l)
n6=$(ip -6 route show proto 94 dev antrea-gw0 | wc -l)
s=$(date +%s%N)
ip link set dev antrea-gw0 down || exit 2
down4=$(ip -4 route show proto 94 dev antrea-gw0 | wc -l)
ip link set dev antrea-gw0 up || exit 2
while [ "$(ip -4 route show proto 94 dev antrea-gw0 | wc -l)" -lt "$n4" ] || [ "$(ip -6 route show proto 94 dev antrea-gw0 | wc -l)" -lt "$n6" ]; do
  [ $(( $(date +%s%N) - s )) -lt 90000000000 ] || { echo "not back after 90 s"; exit 1; }
done
echo "$down4 $n4 $n6 $(( $(date +%s%N) - s ))"
`

// checkWatcherRepair checks, on node, that both watchers run (metrics),
// that a route of ours deleted by hand and a down-up flap of the gateway
// interface are repaired through them within watcherRepairBound (the
// repair times are logged), and that the agent logged no watcher error
// since it started. It leaves the node as it found it.
func checkWatcherRepair(t *testing.T, p agentObserver, node string) {
	t.Helper()
	ctx := context.Background()

	// Both watchers subscribed. The agent may have just started: its
	// watchers start after the gateway interface is configured.
	deadline := time.Now().Add(convergeTimeout)
	for {
		m, err := p.AgentMetrics(ctx, node)
		if err != nil {
			t.Fatalf("metrics of the agent of %s: %v", node, err)
		}
		r, g := metricValue(m, `noderoute_watcher_running{watcher="routes"}`), metricValue(m, `noderoute_watcher_running{watcher="gateway_interface"}`)
		if r == "1" && g == "1" {
			t.Logf("agent of %s: noderoute_watcher_running routes %s, gateway_interface %s", node, r, g)
			break
		}
		if time.Now().After(deadline) {
			// Not fatal: the repair times below tell how bad it is.
			t.Errorf("agent of %s: noderoute_watcher_running routes %q, gateway_interface %q after %v, want 1 and 1", node, r, g, convergeTimeout)
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	logLen := func() int {
		t.Helper()
		l, err := p.AgentLog(ctx, node)
		if err != nil {
			t.Fatalf("log of the agent of %s: %v", node, err)
		}
		return len(l)
	}
	// logSince returns what the agent logged after offset, once it holds
	// want (the log is written a moment after the repair), or what there
	// is after a few seconds.
	logSince := func(offset int, want string) string {
		t.Helper()
		var l string
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			all, err := p.AgentLog(ctx, node)
			if err != nil {
				t.Fatalf("log of the agent of %s: %v", node, err)
			}
			if len(all) < offset {
				t.Fatalf("log of the agent of %s shrank: did it restart?", node)
			}
			l = all[offset:]
			if strings.Contains(l, want) || time.Now().After(end) {
				return l
			}
		}
	}

	// A route deleted by hand: the route watcher's notification asks for
	// a repair ("Routes repaired", a reconcile on request; the periodic
	// one logs "Periodic resync done").
	fam, dst, err := firstRouteOfOurs(ctx, p, node)
	if err != nil {
		t.Fatal(err)
	}
	offset := logLen()
	out, err := p.Exec(ctx, node, "sh", "-c", measureRouteRepair, "sh", fam, dst)
	if err != nil {
		t.Fatalf("on %s, delete route %s and wait for it: %v: %s", node, dst, err, out)
	}
	d, err := nanoseconds(out)
	if err != nil {
		t.Fatalf("on %s, route repair: %v", node, err)
	}
	t.Logf("agent of %s: route %s deleted by hand, back after %v", node, dst, d.Round(time.Millisecond))
	if d > watcherRepairBound {
		t.Errorf("agent of %s: route %s deleted by hand back after %v, want at most %v (through the route watcher, not the periodic resync)", node, dst, d.Round(time.Millisecond), watcherRepairBound)
	}
	if l := logSince(offset, `"Routes repaired"`); !strings.Contains(l, `"Routes repaired"`) {
		t.Errorf("agent of %s: no reconcile on request after route %s was deleted (so not the route watcher); it logged:\n%s", node, dst, l)
	}

	// A down-up flap of the gateway interface: its IPv4 routes vanish
	// without a route notification; the link watcher reports it up
	// ("Gateway interface came up") and asks for the repair.
	offset = logLen()
	out, err = p.Exec(ctx, node, "sh", "-c", measureFlapRepair)
	if err != nil {
		t.Fatalf("on %s, flap antrea-gw0 and wait for the routes: %v: %s", node, err, out)
	}
	f := strings.Fields(out)
	if len(f) != 4 {
		t.Fatalf("on %s, flap: unexpected output %q", node, out)
	}
	d, err = nanoseconds(f[3])
	if err != nil {
		t.Fatalf("on %s, flap repair: %v", node, err)
	}
	t.Logf("agent of %s: antrea-gw0 down and up, its %s IPv4 and %s IPv6 routes of ours back %v after the down (IPv4 routes left while down: %s)", node, f[1], f[2], d.Round(time.Millisecond), f[0])
	if f[1] != "0" && f[0] != "0" {
		t.Errorf("on %s the kernel kept %s IPv4 routes through the down interface: the flap did not test the link watcher", node, f[0])
	}
	if d > watcherRepairBound {
		t.Errorf("agent of %s: routes back %v after a gateway flap, want at most %v (through the link watcher, not the periodic resync)", node, d.Round(time.Millisecond), watcherRepairBound)
	}
	if l := logSince(offset, `"Gateway interface came up"`); !strings.Contains(l, `"Gateway interface came up"`) {
		t.Errorf("agent of %s: the link watcher did not report antrea-gw0 up after the flap; it logged:\n%s", node, l)
	}

	// No watcher trouble logged since the agent started.
	l, err := p.AgentLog(ctx, node)
	if err != nil {
		t.Fatalf("log of the agent of %s: %v", node, err)
	}
	if bad := watcherErrorRE.FindAllString(l, 5); len(bad) > 0 {
		t.Errorf("agent of %s logged watcher errors:\n%s", node, strings.Join(bad, "\n"))
	} else {
		t.Logf("agent of %s: no watcher error in its log (%d lines since it started)", node, strings.Count(l, "\n"))
	}
}

// firstRouteOfOurs returns the address family flag and destination of a
// route of ours on node: an IPv4 one if there is one.
func firstRouteOfOurs(ctx context.Context, p Provider, node string) (fam, dst string, err error) {
	for _, fam := range []string{"-4", "-6"} {
		out, err := p.Exec(ctx, node, "ip", fam, "route", "show", "proto", "94", "dev", "antrea-gw0")
		if err != nil {
			return "", "", fmt.Errorf("routes of %s: %w: %s", node, err, out)
		}
		if f := strings.Fields(out); len(f) > 0 {
			return fam, f[0], nil
		}
	}
	return "", "", fmt.Errorf("no route of ours on %s", node)
}

func nanoseconds(s string) (time.Duration, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a count of nanoseconds: %q", s)
	}
	return time.Duration(n), nil
}

// metricValue returns the value of the series named exactly series (name
// and labels as the text format writes them) in metrics, or "".
func metricValue(metrics, series string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
