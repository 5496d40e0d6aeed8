package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// opResult is the timing of one Create or Delete.
type opResult struct {
	call  time.Duration // the client-go call itself
	route time.Duration // call returned -> route present/absent (polled)
	flow  time.Duration // call returned -> flow ADDED/DELETED event (flow monitor)
	both  time.Duration // call returned -> both
	// flowAfterRoute: the flow event was read after the route change was
	// seen. The agent adds flows before routes and, for a deleted Node,
	// deletes flows before routes, so this only happens when the flow
	// monitor's delivery lags (ovs-vswitchd -> ovs-ofctl -> us).
	flowAfterRoute bool
	polls          int
	pollTime       time.Duration
}

func runIncremental(args []string) error {
	fs := flag.NewFlagSet("incremental", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	start := fs.Int("start", 1000, "first index i of the added bench-<i> (the N installed Nodes are 0..start-1)")
	count := fs.Int("count", 200, "Nodes added, then deleted, one at a time")
	netnsPath := fs.String("route-netns", "", "network namespace (path) of the agent's routes")
	mgmt := fs.String("ovs-mgmt", "", "the bridge's OpenFlow management socket (<ovs run dir>/br-int.mgmt)")
	verify := fs.Int("verify", 5, "for this many adds and deletes, check with ovs-ofctl dump-flows right after the route changed that the flow already has")
	poll := fs.Duration("poll", 200*time.Microsecond, "route polling interval")
	opTimeout := fs.Duration("op-timeout", 10*time.Second, "bound per operation")
	gap := fs.Duration("gap", 20*time.Millisecond, "pause between operations")
	shapeFlag := fs.String("shape", string(shapeRealistic), "what the added Nodes carry: realistic or minimal (see create)")
	prefix := fs.String("prefix", "", "prefix of the result keys (add_..., del_... without one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	shape, err := parseNodeShape(*shapeFlag)
	if err != nil {
		return err
	}
	if *netnsPath == "" || *mgmt == "" {
		return fmt.Errorf("--route-netns and --ovs-mgmt are required")
	}
	if err := checkRange(*start, *count); err != nil {
		return err
	}
	client, err := kubeClient(*kubeconfig)
	if err != nil {
		return err
	}
	h, err := routeHandle(*netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	mon, err := startFlowMonitor(*mgmt)
	if err != nil {
		return err
	}
	defer mon.stop()
	ctx := context.Background()

	// pollRoute polls until the route's presence is want, from the
	// moment the API call returned.
	pollRoute := func(i int, want bool, from time.Time, r *opResult) (time.Time, error) {
		cidr, gw := cidrOf(i)
		pollStart := time.Now()
		defer func() { r.pollTime = time.Since(pollStart) }()
		for {
			present, err := routePresent(h, cidr, gw)
			now := time.Now()
			r.polls++
			if err != nil {
				return now, err
			}
			if present == want {
				return now, nil
			}
			if now.Sub(from) > *opTimeout {
				return now, fmt.Errorf("route %s still %s %s after the API call", cidr, map[bool]string{true: "absent", false: "present"}[want], *opTimeout)
			}
			sleepPrecise(*poll)
		}
	}

	run := func(phase string, op func(i int) error, wantRoute bool, flowKind string) ([]opResult, int, error) {
		var results []opResult
		verifyFailed := 0
		for k := 0; k < *count; k++ {
			i := *start + k
			_, gw := cidrOf(i)
			var r opResult
			t0 := time.Now()
			if err := op(i); err != nil {
				return nil, 0, fmt.Errorf("%s bench-%d: %w", phase, i, err)
			}
			ret := time.Now()
			r.call = ret.Sub(t0)
			tRoute, err := pollRoute(i, wantRoute, ret, &r)
			if err != nil {
				return nil, 0, fmt.Errorf("%s bench-%d: %w", phase, i, err)
			}
			if k < *verify {
				// Right after the route changed: the flow must
				// already be in its final state.
				present, err := flowPresent(ctx, *mgmt, gw.String())
				if err != nil {
					return nil, 0, err
				}
				if present != wantRoute {
					verifyFailed++
					note("ORDER: %s bench-%d: route %s but flow %s right after", phase, i,
						map[bool]string{true: "present", false: "absent"}[wantRoute], map[bool]string{true: "present", false: "absent"}[present])
				}
			}
			tFlow, ok := mon.waitEvent(gw.String(), flowKind, t0, *opTimeout)
			if !ok {
				return nil, 0, fmt.Errorf("%s bench-%d: no flow %s event for arp_tpa=%s within %s", phase, i, flowKind, gw, *opTimeout)
			}
			r.route = tRoute.Sub(ret)
			r.flow = tFlow.Sub(ret)
			r.both = r.route
			if r.flow > r.both {
				r.both = r.flow
			}
			r.flowAfterRoute = tFlow.After(tRoute)
			results = append(results, r)
			time.Sleep(*gap)
		}
		return results, verifyFailed, nil
	}

	note("adding %d Nodes one at a time (bench-%d..bench-%d)", *count, *start, *start+*count-1)
	adds, addVerifyFailed, err := run("add", func(i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, benchNode(i, shape), metav1.CreateOptions{})
		return err
	}, true, "ADDED")
	if err != nil {
		return err
	}
	note("deleting them one at a time")
	dels, delVerifyFailed, err := run("delete", func(i int) error {
		return client.CoreV1().Nodes().Delete(ctx, nodeName(i), metav1.DeleteOptions{})
	}, false, "DELETED")
	if err != nil {
		return err
	}

	report := func(prefix string, rs []opResult, verifyFailed int) {
		var both, route, flow, call durations
		after, polls := 0, 0
		var pollTime time.Duration
		for _, r := range rs {
			both = append(both, r.both)
			route = append(route, r.route)
			flow = append(flow, r.flow)
			call = append(call, r.call)
			if r.flowAfterRoute {
				after++
			}
			polls += r.polls
			pollTime += r.pollTime
		}
		printDist(prefix, both)
		printDist(prefix+"_route", route)
		printDist(prefix+"_flow", flow)
		printDist(prefix+"_call", call)
		result(prefix+"_flow_event_after_route", after)
		result(prefix+"_verified", min(*verify, len(rs)))
		result(prefix+"_verify_failed", verifyFailed)
		if polls > 0 {
			result(prefix+"_poll_interval_us", float64(pollTime.Microseconds())/float64(polls))
		}
	}
	report(*prefix+"add", adds, addVerifyFailed)
	report(*prefix+"del", dels, delVerifyFailed)
	_, _, paused := mon.snapshot()
	result(*prefix+"incr_monitor_paused", paused)
	return nil
}
