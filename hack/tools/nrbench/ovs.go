package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// arpResponderTable is the agent's ARP responder table.
const arpResponderTable = "20"

// arpTPA returns the arp_tpa value of an ovs-ofctl flow line, or "".
func arpTPA(line string) string {
	i := strings.Index(line, "arp_tpa=")
	if i < 0 {
		return ""
	}
	rest := line[i+len("arp_tpa="):]
	if j := strings.IndexAny(rest, ", "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// dumpResponders runs ovs-ofctl dump-flows on table 20 and returns the
// arp_tpa of every priority=200 flow (the per-Node ARP responders).
func dumpResponders(ctx context.Context, mgmt string) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, "ovs-ofctl", "--timeout=10", "dump-flows", "unix:"+mgmt, "table="+arpResponderTable, "--no-stats").Output()
	if err != nil {
		return nil, fmt.Errorf("ovs-ofctl dump-flows %s: %w", mgmt, err)
	}
	set := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, "priority=200") {
			continue
		}
		if tpa := arpTPA(line); tpa != "" {
			set[tpa] = true
		}
	}
	return set, nil
}

// flowPresent asks ovs-ofctl whether the responder flow for gw is in table 20.
func flowPresent(ctx context.Context, mgmt, gw string) (bool, error) {
	out, err := exec.CommandContext(ctx, "ovs-ofctl", "--timeout=10", "dump-flows", "unix:"+mgmt,
		"table="+arpResponderTable+",arp,arp_op=1,arp_tpa="+gw, "--no-stats").Output()
	if err != nil {
		return false, fmt.Errorf("ovs-ofctl dump-flows %s arp_tpa=%s: %w", mgmt, gw, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "priority=200") && arpTPA(line) == gw {
			return true, nil
		}
	}
	return false, nil
}

// flowEvent is one change of table 20 seen by the flow monitor.
type flowEvent struct {
	at   time.Time
	kind string // ADDED, DELETED, MODIFIED
}

// flowMonitor runs `ovs-ofctl monitor <bridge> watch:!initial,table=20`
// (an OpenFlow flow monitor, NXST_FLOW_MONITOR) and timestamps each change
// as it is read: unlike polling dump-flows, it misses no change.
type flowMonitor struct {
	cmd    *exec.Cmd
	rundir string

	mu     sync.Mutex
	events map[string][]flowEvent // by arp_tpa
	counts map[string]int         // by kind
	paused int                    // NXT_FLOW_MONITOR_PAUSED seen (events may have been dropped)
	lines  int
	cond   *sync.Cond
	done   chan struct{}
	err    error
}

func startFlowMonitor(mgmt string) (*flowMonitor, error) {
	// ovs-ofctl monitor opens a unixctl socket in $OVS_RUNDIR.
	rundir, err := os.MkdirTemp("", "nrbench-ofctl-")
	if err != nil {
		return nil, err
	}
	m := &flowMonitor{rundir: rundir, events: map[string][]flowEvent{}, counts: map[string]int{}, done: make(chan struct{})}
	m.cond = sync.NewCond(&m.mu)
	m.cmd = exec.Command("ovs-ofctl", "monitor", "unix:"+mgmt, "watch:!initial,table="+arpResponderTable)
	m.cmd.Env = append(os.Environ(), "OVS_RUNDIR="+rundir)
	// ovs-ofctl prints the reply to the monitor request on stdout (and
	// flushes it) but the flow updates on stderr (unbuffered): read both
	// from one pipe.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	m.cmd.Stdout, m.cmd.Stderr = w, w
	err = m.cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("start ovs-ofctl monitor: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(m.done)
		defer stdout.Close()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		first := true
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			m.mu.Lock()
			m.lines++
			switch {
			case strings.Contains(line, "PAUSED"):
				m.paused++
			case strings.Contains(line, "event="):
				kind := line[strings.Index(line, "event=")+len("event="):]
				if j := strings.IndexByte(kind, ' '); j >= 0 {
					kind = kind[:j]
				}
				m.counts[kind]++
				if tpa := arpTPA(line); tpa != "" {
					m.events[tpa] = append(m.events[tpa], flowEvent{at: now, kind: kind})
				}
			}
			m.cond.Broadcast()
			m.mu.Unlock()
			if first {
				// The reply to the monitor request: monitoring is on.
				first = false
				close(ready)
			}
		}
		m.mu.Lock()
		m.err = sc.Err()
		m.cond.Broadcast()
		m.mu.Unlock()
		if first {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		m.stop()
		return nil, fmt.Errorf("ovs-ofctl monitor on %s: no reply in 10s", mgmt)
	}
	select {
	case <-m.done:
		return nil, fmt.Errorf("ovs-ofctl monitor on %s exited at once", mgmt)
	default:
	}
	return m, nil
}

// waitEvent waits until a kind event for tpa at or after since was seen,
// and returns its time.
func (m *flowMonitor) waitEvent(tpa, kind string, since time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer timer.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		for _, e := range m.events[tpa] {
			if e.kind == kind && !e.at.Before(since) {
				return e.at, true
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		select {
		case <-m.done:
			return time.Time{}, false
		default:
		}
		m.cond.Wait()
	}
}

// snapshot returns the counts by kind, the events by arp_tpa and the number
// of pauses.
func (m *flowMonitor) snapshot() (map[string]int, map[string][]flowEvent, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[string]int{}
	for k, v := range m.counts {
		counts[k] = v
	}
	events := map[string][]flowEvent{}
	for k, v := range m.events {
		events[k] = append([]flowEvent(nil), v...)
	}
	return counts, events, m.paused
}

func (m *flowMonitor) stop() {
	if m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
	}
	_ = m.cmd.Wait()
	os.RemoveAll(m.rundir)
}
