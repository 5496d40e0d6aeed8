//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ARP probes: arping (Debian's arping package, Thomas Habets' arping) sends
// ARP requests for a remote gateway out of antrea-gw0 in a node's network
// namespace, as the kernel does when it resolves a route's gateway, and
// reports every reply it captures on the interface. The answer must come
// from OVS's responder, with the virtual MAC.
const (
	// probeInterval is the time between two probes: 20 per second. arping
	// waits this long for a reply after each request (a later reply still
	// counts, in the next probe's wait).
	probeInterval = "0.05"
	probesPerSec  = 20
	// maxProbes bounds one probe loop (3 minutes at 20 per second), in
	// case it is never stopped.
	maxProbes  = 3 * 60 * probesPerSec
	virtualMAC = "aa:bb:cc:dd:ee:ff"
	// unusedGateway is an address no Node's pod CIDR holds (198.18.0.0/15
	// is reserved for benchmarks, RFC 2544): nothing answers ARP for it.
	unusedGateway = "198.18.0.1"
)

var (
	// "58 bytes from aa:bb:cc:dd:ee:ff (10.222.0.1): index=3/3 time=297.024 usec"
	// With -u: index=<earlier replies>/<the latest request sent, counted from 0>.
	arpingReplyRE = regexp.MustCompile(`bytes from ([0-9a-f:]{17}) \(([0-9.]+)\): index=(\d+)/(\d+)`)
	// "100 packets transmitted, 79 packets received,  21% unanswered (0 extra)"
	arpingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)
)

// probeResult is what one probe loop of one gateway counted.
type probeResult struct {
	Gateway  string
	Sent     int
	Answered int // replies with the virtual MAC
	// InFlight is 1 when the loop was stopped while the last request
	// waited for its reply (arping stops at once on SIGINT): that request
	// was sent after the window under test, so it does not count as lost.
	InFlight int
	Lost     int
	Duration time.Duration
	Output   string
}

func (r probeResult) String() string {
	s := fmt.Sprintf("%s: sent %d, answered %d, lost %d", r.Gateway, r.Sent, r.Answered, r.Lost)
	if r.InFlight > 0 {
		s += fmt.Sprintf(" (+%d in flight when stopped)", r.InFlight)
	}
	return s + fmt.Sprintf(" in %s", r.Duration.Round(time.Millisecond))
}

// parseArping reads arping -u's output: every reply line and the summary.
// A reply from any MAC but the virtual one is an error: something else
// than OVS's responder answered. interrupted says the loop was stopped
// (SIGINT) rather than having sent all its requests.
func parseArping(gateway, out string, interrupted bool) (probeResult, error) {
	r := probeResult{Gateway: gateway, Output: out}
	received := -1
	lastAnswered := -1 // the latest request out when the last reply came
	for _, l := range strings.Split(out, "\n") {
		if m := arpingReplyRE.FindStringSubmatch(l); m != nil {
			if m[1] != virtualMAC || m[2] != gateway {
				return r, fmt.Errorf("arping %s: reply from %s (%s), want %s: %q", gateway, m[1], m[2], virtualMAC, l)
			}
			r.Answered++
			lastAnswered, _ = strconv.Atoi(m[4])
		}
		if m := arpingSummaryRE.FindStringSubmatch(l); m != nil {
			r.Sent, _ = strconv.Atoi(m[1])
			received, _ = strconv.Atoi(m[2])
		}
	}
	if received < 0 {
		return r, fmt.Errorf("arping %s: no summary line in its output:\n%s", gateway, out)
	}
	if received != r.Answered {
		return r, fmt.Errorf("arping %s: the summary counts %d replies, %d reply lines have the virtual MAC:\n%s", gateway, received, r.Answered, out)
	}
	r.Lost = r.Sent - r.Answered
	if r.Lost < 0 { // duplicate replies ("extra")
		r.Lost = 0
	}
	// arping stops at once on SIGINT, possibly between its last request
	// and the reply: if no reply came while that request was the latest
	// one out, it is in flight, not lost.
	if interrupted && r.Lost > 0 && lastAnswered != r.Sent-1 {
		r.InFlight = 1
		r.Lost--
	}
	return r, nil
}

// replyWatcher collects arping's output and closes first at its first reply.
type replyWatcher struct {
	mu    sync.Mutex
	buf   strings.Builder
	first chan struct{}
	seen  bool
}

func (w *replyWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), " bytes from ") {
		w.seen = true
		close(w.first)
	}
	return len(p), nil
}

func (w *replyWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// probeLoop is one arping per gateway, running until stop.
type probeLoop struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []probeResult
	errs    []error
}

// startARPProbes starts, on node, one probe loop per gateway: a request
// every 50 ms out of antrea-gw0, until stop. It returns once every loop has
// had its first reply, so that the window under test starts with all of
// them running; it fails the test if one has none within 20 s.
func startARPProbes(t *testing.T, ie interruptibleExecer, node string, gateways []string) *probeLoop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &probeLoop{cancel: cancel}
	var watchers []*replyWatcher
	for _, gw := range gateways {
		w := &replyWatcher{first: make(chan struct{})}
		watchers = append(watchers, w)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			begin := time.Now()
			err := ie.ExecInterruptible(ctx, node, w, "arping", "-u", "-i", "antrea-gw0",
				"-W", probeInterval, "-c", strconv.Itoa(maxProbes), gw)
			r, perr := parseArping(gw, w.String(), ctx.Err() != nil)
			r.Duration = time.Since(begin)
			l.mu.Lock()
			defer l.mu.Unlock()
			if perr != nil {
				// (arping exits 1 when nothing answered; the
				// counts say more than its status.)
				l.errs = append(l.errs, fmt.Errorf("%w (arping: %v)", perr, err))
				return
			}
			l.results = append(l.results, r)
		}()
	}
	timeout := time.After(20 * time.Second)
	for i, w := range watchers {
		select {
		case <-w.first:
		case <-timeout:
			_, errs := l.stop()
			t.Fatalf("arping %s on %s: no reply within 20 s: %v\n%s", gateways[i], node, errs, w.String())
		}
	}
	return l
}

// stop ends every probe loop and returns their counts.
func (l *probeLoop) stop() ([]probeResult, []error) {
	l.cancel()
	l.wg.Wait()
	sort.Slice(l.results, func(i, j int) bool { return l.results[i].Gateway < l.results[j].Gateway })
	return l.results, l.errs
}

// checkProberDetectsLoss probes, on node, an address nothing answers for:
// every request must count as lost. Without this the zero-loss assertions
// could pass with a prober that sees nothing.
func checkProberDetectsLoss(t *testing.T, node string) {
	t.Helper()
	const n = 10
	begin := time.Now()
	out, err := provider.Exec(context.Background(), node, "arping", "-u", "-i", "antrea-gw0",
		"-W", probeInterval, "-c", strconv.Itoa(n), unusedGateway)
	r, perr := parseArping(unusedGateway, out, false)
	r.Duration = time.Since(begin)
	if perr != nil {
		t.Fatalf("arping self-check on %s: %v (arping: %v); the probes need Debian's arping package (apt-get install arping; .ci/run installs it), not iputils-arping", node, perr, err)
	}
	if r.Sent != n || r.Answered != 0 || r.Lost != n {
		t.Fatalf("arping self-check on %s for %s (unanswered): %s, want %d sent and lost\n%s", node, unusedGateway, r, n, out)
	}
	t.Logf("arping self-check on %s: %s, nothing answers for it, as expected", node, r)
}

// faultProbes is one probe loop per gateway that outlives the interface it
// sends on: when arping exits early (antrea-gw0 vanished with the OVS that
// owns it, or the node restarted), it is started again, and the time no
// arping ran counts as lost probes at the nominal rate. It is for faults
// that can take the probing interface away; startARPProbes, which fails on
// such an exit, is for those that must not.
type faultProbes struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	totals map[string]*faultProbeTotal
}

// faultProbeTotal adds up the runs of one gateway's loop.
type faultProbeTotal struct {
	Sent, Answered, Lost int
	Restarts             int
	// LastAnswered is when a reply last came: after the fault, the loop
	// must be answered again.
	LastAnswered time.Time
	Errors       []string
}

func (f *faultProbeTotal) String() string {
	return fmt.Sprintf("sent %d, answered %d, lost %d (arping restarted %d times)", f.Sent, f.Answered, f.Lost, f.Restarts)
}

func startFaultProbes(t *testing.T, ie interruptibleExecer, node string, gateways []string) *faultProbes {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &faultProbes{cancel: cancel, totals: map[string]*faultProbeTotal{}}
	started := make(chan struct{}, len(gateways))
	for _, gw := range gateways {
		total := &faultProbeTotal{}
		f.totals[gw] = total
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			first := true
			for ctx.Err() == nil {
				w := &replyWatcher{first: make(chan struct{})}
				if first {
					go func() {
						select {
						case <-w.first:
							started <- struct{}{}
						case <-ctx.Done():
						}
					}()
					first = false
				}
				begin := time.Now()
				err := ie.ExecInterruptible(ctx, node, w, "arping", "-u", "-i", "antrea-gw0",
					"-W", probeInterval, "-c", strconv.Itoa(maxProbes), gw)
				r, perr := parseArping(gw, w.String(), ctx.Err() != nil)
				ran := time.Since(begin)
				f.mu.Lock()
				if perr != nil {
					// No summary (arping failed): the requests it
					// sent are estimated from how long it ran.
					total.Errors = append(total.Errors, fmt.Sprintf("%v (arping: %v)", perr, err))
					r.Sent = int(ran / (50 * time.Millisecond))
					r.Lost = max(r.Sent-r.Answered, 0)
				}
				total.Sent += r.Sent
				total.Answered += r.Answered
				total.Lost += r.Lost
				if r.Answered > 0 {
					total.LastAnswered = time.Now()
				}
				if ctx.Err() == nil {
					// Exited early: the time it was not sending,
					// and the pause before the next run, is lost.
					total.Restarts++
					missed := 1 + int(max(ran-time.Duration(r.Sent)*50*time.Millisecond, 0)/(50*time.Millisecond))
					total.Sent += missed
					total.Lost += missed
				}
				f.mu.Unlock()
				if ctx.Err() == nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	timeout := time.After(20 * time.Second)
	for range gateways {
		select {
		case <-started:
		case <-timeout:
			f.stop()
			t.Fatalf("fault probes on %s: not every gateway of %v answered within 20 s", node, gateways)
		}
	}
	return f
}

// stop ends the loops and returns each gateway's totals.
func (f *faultProbes) stop() map[string]*faultProbeTotal {
	f.cancel()
	f.wg.Wait()
	return f.totals
}
