package openflow

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net"
	"sort"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"k8s.io/klog/v2"
)

// Flow drift repair: a flow of ours deleted by hand (ovs-ofctl del-flows)
// is put back by a periodic comparison of what the client installed with
// what the bridge holds (RunFlowCheck). Periodic comparison rather than
// flow monitoring (NXST_FLOW_MONITOR): libOpenflow does not decode Nicira
// flow monitor messages, and a comparison also catches what a monitor
// misses (events lost while disconnected or while the monitor is set up).

const (
	// DefaultFlowCheckPeriod is the suggested pause between two flow
	// checks. A flow deleted by hand is back within one period plus one
	// check that finds it missing (the dump, flowDumpSettle and the
	// bundle), inside the 5 s the agent promises even on a slow node
	// (TestRunFlowCheckRepairTime measures it). The period also bounds what
	// the checks cost the agent and ovs-vswitchd in a large cluster
	// (BenchmarkRepairFlows5000; figures in docs/performance.md).
	DefaultFlowCheckPeriod = 2 * time.Second
	// flowDumpTimeout bounds one dump, e.g. when the connection drops
	// while it is under way.
	flowDumpTimeout = 5 * time.Second
	// flowCountTimeout bounds one count of the flows (four one-part
	// replies).
	flowCountTimeout = time.Second
	// flowDumpSettle is how long a dump in which flows seem missing waits
	// for late parts (see flowStatsDump.wait). Parsing one part takes well
	// under a millisecond; the margin is for a loaded node.
	flowDumpSettle = 200 * time.Millisecond
)

// RepairFlows compares the flows the client installed (the base flows and
// every responder of the current round) with those the bridge holds, and
// adds the missing ones back in one bundle. It returns how many it added;
// before Initialize it does nothing.
//
// Flows are compared by table, priority, match and cookie (see flowID). Only
// flows of the current round are read, and the only messages sent are adds
// of our own flows: a flow with another cookie (round 0, added by hand, or
// another round) is never deleted or modified. One exception follows from
// OpenFlow itself: a flow added by hand with exactly the table, priority
// and match of one of ours has replaced ours (OpenFlow keeps one flow per
// table, priority and match), and adding ours back replaces it in turn.
// Telling it apart would mean reading flows of other cookies, which
// libOpenflow cannot parse safely (see flowstats.go).
//
// The client's lock is not held while the bridge is read, so that Node
// changes are not held up by a dump; a flow is only added back if the
// client wanted it both before and after the dump, so a responder removed
// meanwhile is not brought back. A responder added meanwhile is left for
// the next check.
func (c *OFClient) RepairFlows() (restored int, err error) {
	flows, err := c.repairFlows(context.Background())
	return len(flows), err
}

// RunFlowCheck runs RepairFlows every period (DefaultFlowCheckPeriod if
// period is not positive) until ctx ends. Checks are skipped while the
// OpenFlow connection is down: the replay after the reconnect puts every
// flow back anyway. Failures are logged and the next check tries again.
func (c *OFClient) RunFlowCheck(ctx context.Context, period time.Duration) {
	if period <= 0 {
		period = DefaultFlowCheckPeriod
	}
	klog.InfoS("Checking flows periodically", "bridge", c.bridge, "period", period)
	// A timer restarted after each check rather than a ticker, so that
	// checks never run back to back on a slow bridge.
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.checkFlows(ctx)
		timer.Reset(period)
	}
}

// checkFlows runs one check for RunFlowCheck and logs its outcome.
func (c *OFClient) checkFlows(ctx context.Context) {
	if !c.Connected() {
		klog.V(4).InfoS("Skipping flow check while disconnected", "bridge", c.bridge)
		return
	}
	start := time.Now()
	restored, err := c.repairFlows(ctx)
	switch {
	case ctx.Err() != nil:
		// Stopping: a check cut short says nothing about the bridge.
	case err != nil:
		klog.ErrorS(err, "Flow check failed", "bridge", c.bridge)
	case len(restored) > 0:
		klog.InfoS("Restored missing flows", "bridge", c.bridge, "count", len(restored), "flows", firstFew(restored), "duration", time.Since(start))
	default:
		klog.V(4).InfoS("Flow check found no missing flow", "bridge", c.bridge, "duration", time.Since(start))
	}
}

// maxLoggedFlows bounds the flows named in one log line: after a mass
// deletion thousands are restored, and the count says enough.
const maxLoggedFlows = 10

// firstFew returns names, cut to maxLoggedFlows and a note of the rest.
func firstFew(names []string) []string {
	if len(names) <= maxLoggedFlows {
		return names
	}
	return append(names[:maxLoggedFlows:maxLoggedFlows], fmt.Sprintf("and %d more", len(names)-maxLoggedFlows))
}

// repairFlows is RepairFlows; it returns the restored flows as ovs-ofctl
// would name them (table, priority and match).
func (c *OFClient) repairFlows(ctx context.Context) ([]string, error) {
	sw := c.currentSwitch()
	// Counting first (flowcount.go): the usual check ends here. A count
	// can differ because a Node's flows changed between the snapshot and
	// the bridge's answer; so it is taken twice before the dump. Each
	// count has a deadline of its own, so that one unanswered count
	// leaves the dump its whole time.
	for attempt := 0; attempt < 2; attempt++ {
		c.mu.Lock()
		initialized, round, counts := c.initialized, c.pipe.round, c.wantedCountsLocked()
		c.mu.Unlock()
		if !initialized {
			return nil, nil
		}
		if sw == nil {
			return nil, fmt.Errorf("not connected to bridge %s at %s", c.bridge, c.sock)
		}
		countCtx, cancelCount := context.WithTimeout(ctx, flowCountTimeout)
		same, err := c.countsMatch(countCtx, sw, round, counts)
		cancelCount()
		if err != nil {
			klog.V(2).InfoS("Counting flows failed, dumping them", "bridge", c.bridge, "err", err)
			break
		}
		if same {
			return nil, nil
		}
	}
	round, wanted, err := c.snapshotWantedFlows()
	if err != nil || wanted == nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, flowDumpTimeout)
	defer cancel()
	allThere := func(seen map[flowID]bool) bool { return len(missingFlows(wanted, seen)) == 0 }
	have, err := c.dumpFlows(ctx, sw, round, allThere, flowDumpSettle)
	if err != nil {
		return nil, fmt.Errorf("dump flows of bridge %s: %w", c.bridge, err)
	}
	missing := missingFlows(wanted, have)
	if len(missing) == 0 {
		return nil, nil
	}
	return c.restoreFlows(round, missing)
}

// snapshotWantedFlows returns the current round and the flows the client
// keeps on the bridge, by ID; nil before Initialize.
func (c *OFClient) snapshotWantedFlows() (uint16, map[flowID]WantedFlow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initialized {
		return 0, nil, nil
	}
	wanted, err := c.wantedFlowsLocked()
	if err != nil {
		return 0, nil, fmt.Errorf("list the flows of bridge %s: %w", c.bridge, err)
	}
	return c.pipe.round, wanted, nil
}

// wantedFlowsLocked lists every flow the client keeps on the bridge (see
// wantedFlowsOfLocked) by ID. Only the matches are built: a check that
// finds nothing missing (the usual case) needs no actions, and the lock is
// held for less. Callers hold c.mu.
func (c *OFClient) wantedFlowsLocked() (map[flowID]WantedFlow, error) {
	wanted := map[flowID]WantedFlow{}
	for w := range c.wantedFlowsOfLocked() {
		id, err := w.id()
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", w.Text().Key(), err)
		}
		wanted[id] = w
	}
	return wanted, nil
}

// wantedFlowsOfLocked yields every flow the client keeps on the bridge:
// the base flows and the flows of every installed gateway. Callers hold
// c.mu.
func (c *OFClient) wantedFlowsOfLocked() iter.Seq[WantedFlow] {
	return c.pipe.wantedFlows(maps.Values(c.installedGatewaysLocked()))
}

// installedGatewaysLocked returns every gateway with a responder, by its
// string form. Callers hold c.mu.
func (c *OFClient) installedGatewaysLocked() map[string]net.IP {
	gws := map[string]net.IP{}
	for _, node := range c.nodeFlows {
		for key, ip := range node {
			gws[key] = ip
		}
	}
	return gws
}

// missingFlows returns the wanted flows whose IDs are not in have, sorted
// by ID.
func missingFlows(wanted map[flowID]WantedFlow, have map[flowID]bool) []WantedFlow {
	var ids []flowID
	for id := range wanted {
		if !have[id] {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	missing := make([]WantedFlow, len(ids))
	for i, id := range ids {
		missing[i] = wanted[id]
	}
	return missing
}

// restoreFlows adds back, in one bundle, the flows of missing that the
// client still wants, and returns their names.
func (c *OFClient) restoreFlows(round uint16, missing []WantedFlow) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initialized || c.pipe.round != round {
		// Initialize ran again meanwhile and installed everything.
		return nil, nil
	}
	installed := c.installedGatewaysLocked()
	var mods []*openflow13.FlowMod
	var names []string
	for _, w := range missing {
		if w.Gateway != nil {
			if _, ok := installed[w.Gateway.String()]; !ok {
				continue // removed while the bridge was read
			}
		}
		mods = append(mods, w.spec().addMessage())
		names = append(names, c.describeFlow(w))
	}
	if len(mods) == 0 {
		return nil, nil
	}
	if err := c.sendBundles(mods); err != nil {
		return nil, fmt.Errorf("restore %d missing flows on bridge %s: %w", len(mods), c.bridge, err)
	}
	return names, nil
}

// describeFlow names a wanted flow as ovs-ofctl prints its table, priority
// and match, e.g. "table=20,priority=200,arp,arp_tpa=10.222.2.1,arp_op=1":
// the flow's key in agentctl check.
func (c *OFClient) describeFlow(w WantedFlow) string { return w.Text().Key() }
