package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// sampleStats is what one sampler saw.
type sampleStats struct {
	samples     int
	invalid     int // interrupted dumps, failed ovs-ofctl runs
	minPresent  int
	missingOnes int // samples with at least one expected entry missing
	maxMissing  int
	maxGap      time.Duration // longest time between two valid samples
	firstMiss   time.Time
	lastMiss    time.Time
}

func (s *sampleStats) add(present, want int, at, prev time.Time) {
	s.samples++
	if s.samples == 1 || present < s.minPresent {
		s.minPresent = present
	}
	if missing := want - present; missing > 0 {
		s.missingOnes++
		if missing > s.maxMissing {
			s.maxMissing = missing
		}
		if s.firstMiss.IsZero() {
			s.firstMiss = at
		}
		s.lastMiss = at
	}
	if !prev.IsZero() && at.Sub(prev) > s.maxGap {
		s.maxGap = at.Sub(prev)
	}
}

func (s *sampleStats) print(prefix string, ref time.Time) {
	result(prefix+"_samples", s.samples)
	result(prefix+"_invalid", s.invalid)
	result(prefix+"_min_present", s.minPresent)
	result(prefix+"_samples_missing", s.missingOnes)
	result(prefix+"_max_missing", s.maxMissing)
	result(prefix+"_max_gap_ms", ms(s.maxGap))
	if !s.firstMiss.IsZero() {
		result(prefix+"_first_missing_s", s.firstMiss.Sub(ref).Seconds())
		result(prefix+"_last_missing_s", s.lastMiss.Sub(ref).Seconds())
	}
}

func runSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	netnsPath := fs.String("route-netns", "", "network namespace (path) of the agent's routes")
	mgmt := fs.String("ovs-mgmt", "", "the bridge's OpenFlow management socket")
	start := fs.Int("start", 0, "first index of the installed bench Nodes")
	count := fs.Int("count", 1000, "number of installed bench Nodes (all must stay present)")
	stopFile := fs.String("stop-file", "", "stop once this file exists")
	readyFile := fs.String("ready-file", "", "created once every sampler and watcher runs")
	routeInterval := fs.Duration("route-interval", time.Millisecond, "pause between two route dumps")
	flowInterval := fs.Duration("flow-interval", 200*time.Millisecond, "pause between two ovs-ofctl dump-flows")
	maxDuration := fs.Duration("max-duration", 10*time.Minute, "bound")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *netnsPath == "" || *mgmt == "" || *stopFile == "" {
		return fmt.Errorf("--route-netns, --ovs-mgmt and --stop-file are required")
	}
	if err := checkRange(*start, *count); err != nil {
		return err
	}
	wantRoutes := map[string]bool{}
	wantFlows := map[string]bool{}
	for i := *start; i < *start+*count; i++ {
		c, gw := cidrOf(i)
		wantRoutes[c.String()] = true
		wantFlows[gw.String()] = true
	}
	h, err := routeHandle(*netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *maxDuration)
	defer cancel()

	// Every route change in the namespace, as the kernel announces it.
	ns, err := netns.GetFromPath(*netnsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	updates := make(chan netlink.RouteUpdate, 65536)
	subDone := make(chan struct{})
	var subMu sync.Mutex
	var subErrs int
	var routeDel, routeNew int
	if err := netlink.RouteSubscribeWithOptions(updates, subDone, netlink.RouteSubscribeOptions{
		Namespace:              &ns,
		ReceiveBufferSize:      32 << 20,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case <-subDone:
				return // closing the subscription
			default:
			}
			subMu.Lock()
			subErrs++
			subMu.Unlock()
			note("route subscription error (events may be lost): %v", err)
		},
	}); err != nil {
		return fmt.Errorf("subscribe to route changes: %w", err)
	}
	go func() {
		for u := range updates {
			if u.Protocol != routeProtocol || u.Dst == nil || !wantRoutes[u.Dst.String()] {
				continue
			}
			subMu.Lock()
			switch u.Type {
			case unix.RTM_DELROUTE:
				routeDel++
			case unix.RTM_NEWROUTE:
				routeNew++
			}
			subMu.Unlock()
		}
	}()

	mon, err := startFlowMonitor(*mgmt)
	if err != nil {
		close(subDone)
		return err
	}

	var routes, flows sampleStats
	var mu sync.Mutex
	stop := make(chan struct{})
	firstRoute, firstFlow := make(chan struct{}), make(chan struct{})
	var samplers sync.WaitGroup
	samplers.Add(2)
	go func() {
		defer samplers.Done()
		var prev time.Time
		first := true
		for {
			dsts, interrupted, err := ourRoutes(h)
			now := time.Now()
			mu.Lock()
			if err != nil || interrupted {
				routes.invalid++
			} else {
				present := 0
				for d := range wantRoutes {
					if dsts[d] {
						present++
					}
				}
				routes.add(present, len(wantRoutes), now, prev)
				prev = now
				if first {
					first = false
					close(firstRoute)
				}
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(*routeInterval):
			}
		}
	}()
	go func() {
		defer samplers.Done()
		var prev time.Time
		first := true
		for {
			set, err := dumpResponders(ctx, *mgmt)
			now := time.Now()
			mu.Lock()
			if err != nil {
				flows.invalid++
			} else {
				present := 0
				for gw := range wantFlows {
					if set[gw] {
						present++
					}
				}
				flows.add(present, len(wantFlows), now, prev)
				prev = now
				if first {
					first = false
					close(firstFlow)
				}
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(*flowInterval):
			}
		}
	}()
	for _, ch := range []chan struct{}{firstRoute, firstFlow} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("samplers did not start")
		}
	}
	ready := time.Now()
	if *readyFile != "" {
		if err := os.WriteFile(*readyFile, []byte(ready.Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
			return err
		}
	}
	note("sampling %d routes and flows until %s exists", *count, *stopFile)
	for {
		if _, err := os.Stat(*stopFile); err == nil {
			break
		}
		if ctx.Err() != nil {
			note("max duration reached")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	samplers.Wait()
	// Let the last announcements arrive.
	time.Sleep(100 * time.Millisecond)
	counts, events, paused := mon.snapshot()
	mon.stop()
	close(subDone)

	mu.Lock()
	defer mu.Unlock()
	result("sample_seconds", time.Since(ready).Seconds())
	routes.print("route", ready)
	flows.print("flow", ready)
	subMu.Lock()
	result("route_del_events", routeDel)
	result("route_new_events", routeNew)
	result("route_sub_errors", subErrs)
	subMu.Unlock()
	deleted := 0
	for gw, evs := range events {
		if !wantFlows[gw] {
			continue
		}
		for _, e := range evs {
			if e.kind == "DELETED" {
				deleted++
			}
		}
	}
	result("flow_deleted_events", deleted)
	result("flow_added_events", counts["ADDED"])
	result("flow_modified_events", counts["MODIFIED"])
	result("flow_monitor_paused", paused)
	return nil
}
