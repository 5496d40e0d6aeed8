package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The agent's metrics that tell whether an update reached its data path:
// every Node taken off the queue is one node sync (each one may call OVS
// and netlink), so no node sync means no queue add either.
var heartbeatCounters = map[string]string{
	"node_syncs":  `noderoute_sync_duration_seconds_count{sync="node"}`,
	"full_syncs":  `noderoute_sync_duration_seconds_count{sync="full"}`,
	"sync_errors": `noderoute_sync_errors_total`,
}

// runHeartbeat sends status-only Node updates, as kubelets do when they
// report their conditions: the heartbeat times change, the pod CIDRs do not.
// It measures the agent's CPU for them beyond its idle cost, and reads the
// agent's metrics before and after to show whether any reached a sync.
func runHeartbeat(args []string) error {
	fs := flag.NewFlagSet("heartbeat", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	start := fs.Int("start", 0, "first index i of the bench-<i> to update")
	count := fs.Int("count", 1000, "Nodes updated in turn")
	rate := fs.Float64("rate", 500, "updates per second (a kubelet per Node every 10 s at 5000 Nodes)")
	duration := fs.Duration("duration", 30*time.Second, "how long to send updates")
	idle := fs.Duration("idle", 10*time.Second, "how long to measure the agent's idle CPU first")
	workers := fs.Int("workers", 32, "concurrent PATCH calls")
	agentPid := fs.Int("agent-pid", 0, "the agent's pid (its CPU is read from /proc)")
	metricsURL := fs.String("metrics", "http://127.0.0.1:9475/metrics", "the agent's /metrics")
	drain := fs.Duration("drain", 2*time.Second, "wait after the last update before reading the agent's CPU and metrics")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *agentPid <= 0 || *count <= 0 || *rate <= 0 {
		return fmt.Errorf("--agent-pid, --count and --rate must be > 0")
	}
	if err := checkRange(*start, *count); err != nil {
		return err
	}
	client, err := kubeClient(*kubeconfig)
	if err != nil {
		return err
	}

	cpu0, err := cpuSeconds(*agentPid)
	if err != nil {
		return err
	}
	time.Sleep(*idle)
	cpu1, err := cpuSeconds(*agentPid)
	if err != nil {
		return err
	}
	idleRate := (cpu1 - cpu0) / idle.Seconds()
	before, err := scrapeCounters(*metricsURL)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration+time.Minute)
	defer cancel()
	ticks := make(chan int, *workers)
	var sent, failed atomic.Int64
	var firstErr firstError
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ticks {
				patch, err := heartbeatPatch(time.Now())
				if err == nil {
					_, err = client.CoreV1().Nodes().Patch(ctx, nodeName(i), types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
				}
				if err != nil {
					failed.Add(1)
					firstErr.set(err)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	t0 := time.Now()
	cpuStart, err := cpuSeconds(*agentPid)
	if err != nil {
		return err
	}
	interval := time.Duration(float64(time.Second) / *rate)
	skipped := 0
	for k := 0; ; k++ {
		due := t0.Add(time.Duration(k) * interval)
		if due.Sub(t0) >= *duration {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case ticks <- *start + k%*count:
		default:
			// Every worker busy: the API server is slower than the
			// rate. Skip this update (counted) rather than wait, so
			// that the phase lasts --duration and the rate sent is
			// what the API server sustains.
			skipped++
		}
	}
	close(ticks)
	wg.Wait()
	sending := time.Since(t0)
	time.Sleep(*drain)
	cpuEnd, err := cpuSeconds(*agentPid)
	if err != nil {
		return err
	}
	window := time.Since(t0)
	after, err := scrapeCounters(*metricsURL)
	if err != nil {
		return err
	}
	// A failed update (the API server overloaded on this machine) is
	// counted, not fatal: the agent's cost is per update it received.
	if n := failed.Load(); n > 0 {
		note("%d of %d status updates failed, first: %v", n, n+sent.Load(), firstErr.get())
	}
	result("hb_failed", failed.Load())

	n := sent.Load()
	extra := (cpuEnd - cpuStart) - idleRate*window.Seconds()
	note("%d status updates in %s (%.0f/s); agent CPU %.3f s, %.3f s beyond idle", n, sending.Round(time.Millisecond),
		float64(n)/sending.Seconds(), cpuEnd-cpuStart, extra)
	result("hb_updates", n)
	result("hb_seconds", sending.Seconds())
	result("hb_rate_per_second", float64(n)/sending.Seconds())
	result("hb_rate_asked_per_second", *rate)
	result("hb_skipped_all_workers_busy", skipped)
	result("hb_agent_idle_cpu_per_second", idleRate)
	result("hb_agent_cpu_s", cpuEnd-cpuStart)
	result("hb_agent_cpu_beyond_idle_s", extra)
	if n > 0 {
		result("hb_agent_cpu_per_update_us", extra/float64(n)*1e6)
	}
	for key := range heartbeatCounters {
		b, okB := before[key]
		a, okA := after[key]
		if !okB || !okA {
			result("hb_"+key+"_delta", "n/a")
			continue
		}
		result("hb_"+key+"_delta", a-b)
	}
	return nil
}

// heartbeatPatch is what a kubelet's status update changes on a healthy
// Node: the heartbeat time of each condition (merged by type).
func heartbeatPatch(at time.Time) ([]byte, error) {
	conds := benchConditions(at)
	type cond struct {
		Type              string      `json:"type"`
		LastHeartbeatTime metav1.Time `json:"lastHeartbeatTime"`
	}
	patch := struct {
		Status struct {
			Conditions []cond `json:"conditions"`
		} `json:"status"`
	}{}
	for _, c := range conds {
		patch.Status.Conditions = append(patch.Status.Conditions, cond{Type: string(c.Type), LastHeartbeatTime: c.LastHeartbeatTime})
	}
	return json.Marshal(patch)
}

// cpuSeconds is utime+stime of pid.
func cpuSeconds(pid int) (float64, error) {
	u, s, err := procCPU(pid)
	return u + s, err
}

// scrapeCounters reads the agent's metrics and returns the values of
// heartbeatCounters (summed over label sets where the name has no labels).
func scrapeCounters(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return parseCounters(string(body), heartbeatCounters), nil
}

// parseCounters picks the series of want (key -> series) out of a
// Prometheus text exposition. A series without labels sums every label set
// of that name.
func parseCounters(text string, want map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(series, "{")
		for key, w := range want {
			if series == w || (!strings.Contains(w, "{") && name == w) {
				out[key] += v
			}
		}
	}
	return out
}
