package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// The goals the table gives a verdict on (docs/performance.md), at the
// goal's N.
const (
	goalN               = 5000
	goalColdStartRatio  = 1.3  // cold start / floor
	goalP99Ms           = 10.0 // incremental p99 at one change per second
	goalP99Gap          = "1s"
	goalBurstSeconds    = 2.0  // burst programmed after the last Create returned
	goalHeartbeatCPUUs  = 50.0 // agent CPU per status-only update
	goalPeakRSSMB       = 60.0 // agent VmHWM, any agent process of the run
	defaultRatesSetting = "20ms:200"
)

// runTable prints the table of one N from its results file.
func runTable(args []string) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	file := fs.String("results", "", "results-<N>.txt of hack/bench.sh")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := readResults(*file)
	if err != nil {
		return err
	}
	t := &table{r: r, w: os.Stdout, n: int(r.num("bench_n")), reps: int(r.num("bench_reps"))}
	if t.n <= 0 || t.reps <= 0 {
		return fmt.Errorf("%s: no bench_n or bench_reps", *file)
	}
	t.print(*file)
	return nil
}

type table struct {
	r       results
	w       io.Writer
	n, reps int
}

func (t *table) row(figure, value, verdict, load string) {
	fmt.Fprintf(t.w, "  %-50s %-30s %-30s %s\n", figure, value, verdict, load)
}

// secs is "median s (min-max)" of a key over the runs.
func (t *table) secs(vs []float64) string {
	m := fmtNum(median(vs), 3) + " s"
	if t.reps > 1 {
		lo, hi := minMax(vs)
		m += fmt.Sprintf(" (%s-%s)", fmtNum(lo, 3), fmtNum(hi, 3))
	}
	return m
}

func (t *table) over(format string) []float64 { return t.r.reps(format, t.reps) }

// verdict is "<goal>: MET" or "NOT MET", with a note when N is not the
// goal's.
func (t *table) verdict(goal string, met bool) string {
	v := goal + ": NOT MET"
	if met {
		v = goal + ": MET"
	}
	if t.n != goalN {
		v += fmt.Sprintf(" (goal at N=%d)", goalN)
	}
	return v
}

func (t *table) print(file string) {
	r := t.r
	fmt.Fprintf(t.w, "\nnoderoute bench, N=%d remote Nodes (%s): %s, %s CPUs, kernel %s, %s, agent %s, GOMEMLIMIT %s\n",
		t.n, r.str("bench_shape"), r.str("bench_date"), r.str("bench_cpus"), r.str("bench_kernel"), r.str("bench_ovs"), r.str("agent_version"), r.str("bench_gomemlimit"))
	fmt.Fprintf(t.w, "  (medians over %d runs, min-max in brackets; load = /proc/loadavg 1/5/15 min when the figure was taken, first run)\n", t.reps)
	t.row("figure", "value", "goal: verdict", "load")
	t.coldStart()
	t.heartbeat()
	t.incremental()
	t.burst()
	t.restart()
	t.resources()
	fmt.Fprintf(t.w, "  raw values: %s\n", file)
}

func (t *table) coldStart() {
	r := t.r
	cold := t.over("cold%d_full_sync_s")
	flows := t.over("floor%d_flows_s")
	nodeNS := t.over("floor%d_nodens_routes_s")
	floor := make([]float64, len(flows))
	for i := range flows {
		floor[i] = flows[i] + nodeNS[i]
	}
	load := r.str("cold1_load")
	t.row("cold start: agent start -> synced", t.secs(cold), "", load)
	t.row("  start -> informer populated (the list)", t.secs(t.over("cold%d_informer_populated_s")), "", "")
	t.row("  list's share of the cold start", fmtNum(100*median(ratio(t.over("cold%d_informer_populated_s"), cold)), 0)+" %", "", "")
	t.row("  start -> OpenFlow connected", t.secs(t.over("cold%d_of_connected_s")), "", "")
	t.row("  start -> cache synced (controller)", t.secs(t.over("cold%d_cache_synced_s")), "", "")
	t.row("  cache synced -> synced", t.secs(t.over("cold%d_synced_to_full_sync_s")), "", "")
	t.row("  full sync: flows / routes phase", fmtNum(median(t.over("cold%d_flowsPhase_s")), 3)+" / "+fmtNum(median(t.over("cold%d_routesPhase_s")), 3)+" s", "", "")
	t.row(fmt.Sprintf("  flows/routes after (want %d)", t.n), r.str("cold1_flows")+" / "+r.str("cold1_routes"), "", "")
	t.row(fmt.Sprintf("floor: bundle add-flows (%s flows)", r.str("floor1_flow_lines")), t.secs(flows), "", r.str("floor1_load"))
	t.row("floor: ip -batch into the node's netns", t.secs(nodeNS), "", "")
	t.row("  ... until its ovs-vswitchd is idle again", t.secs(t.over("floor%d_nodens_settled_s")), "", "")
	t.row("  ... ovs-vswitchd CPU meanwhile", t.secs(t.over("floor%d_nodens_vswitchd_cpu_s")), "", "")
	t.row("  (same routes into a fresh netns, no OVS)", t.secs(t.over("floor%d_routes_s")), "", "")
	t.row("floor: total (flows + node's netns)", t.secs(floor), "", "")
	q := median(ratio(cold, floor))
	t.row("ratio cold start / floor", fmtNum(q, 2)+"x", t.verdict(fmt.Sprintf("<= %.1fx", goalColdStartRatio), q <= goalColdStartRatio), "")
}

func (t *table) heartbeat() {
	r := t.r
	if _, ok := r["hb_updates"]; !ok {
		return
	}
	per := r.num("hb_agent_cpu_per_update_us")
	syncs := r.num("hb_node_syncs_delta")
	t.row(fmt.Sprintf("status updates: %s in %s s (asked %s/s)", r.str("hb_updates"), fmtNum(r.num("hb_seconds"), 1), fmtNum(r.num("hb_rate_asked_per_second"), 0)),
		fmtNum(r.num("hb_rate_per_second"), 0)+"/s sent, "+r.str("hb_failed")+" failed", "", r.str("hb_load"))
	t.row("  agent CPU per update, beyond idle", fmtNum(per, 1)+" us", t.verdict(fmt.Sprintf("<= %.0f us", goalHeartbeatCPUUs), per <= goalHeartbeatCPUUs), "")
	t.row("  agent CPU: idle / during the updates", fmtNum(1000*r.num("hb_agent_idle_cpu_per_second"), 1)+" ms/s / "+fmtNum(r.num("hb_agent_cpu_s"), 3)+" s", "", "")
	t.row("  node syncs / full syncs they caused", fmtNum(syncs, 0)+" / "+fmtNum(r.num("hb_full_syncs_delta"), 0), t.verdict("no sync", syncs == 0 && r.num("hb_full_syncs_delta") == 0), "")
}

func (t *table) incremental() {
	r := t.r
	rates := r.str("bench_rates")
	if rates == "" {
		rates = defaultRatesSetting
	}
	for _, rate := range strings.Fields(rates) {
		gap, _, _ := strings.Cut(rate, ":")
		p := "g" + gap + "_"
		for _, op := range []struct{ key, name string }{{"add", "add"}, {"del", "delete"}} {
			k := p + op.key
			p99 := r.num(k + "_p99_ms")
			verdict := ""
			if gap == goalP99Gap {
				verdict = t.verdict(fmt.Sprintf("p99 <= %.0f ms", goalP99Ms), p99 <= goalP99Ms)
			}
			t.row(fmt.Sprintf("%s, one per %s: p50 / p99 (n=%s)", op.name, gap, r.str(k+"_n")),
				fmt.Sprintf("%s / %s ms (max %s)", fmtNum(r.num(k+"_p50_ms"), 2), fmtNum(p99, 2), fmtNum(r.num(k+"_max_ms"), 2)), verdict, r.str(p+"load"))
			t.row("  route in place / responder in place: p50", fmtNum(r.num(k+"_route_p50_ms"), 2)+" / "+fmtNum(r.num(k+"_flow_p50_ms"), 2)+" ms", "", "")
			t.row("  route in place / responder in place: p99", fmtNum(r.num(k+"_route_p99_ms"), 2)+" / "+fmtNum(r.num(k+"_flow_p99_ms"), 2)+" ms", "", "")
		}
		verified := r.num(p+"add_verified") + r.num(p+"del_verified")
		failed := r.num(p+"add_verify_failed") + r.num(p+"del_verify_failed")
		t.row("  flow in place before its route (checked)", fmtNum(verified-failed, 0)+" of "+fmtNum(verified, 0), "", "")
	}
}

func (t *table) burst() {
	r := t.r
	if _, ok := r["burst_count"]; !ok {
		return
	}
	after := r.num("burst_routes_after_last_ack_seconds")
	t.row(fmt.Sprintf("burst: %s Nodes created (%s workers)", r.str("burst_count"), r.str("burst_workers")), fmtNum(r.num("burst_seconds"), 2)+" s of Creates", "", r.str("burst_load"))
	t.row("  programmed after the last Create returned", fmtNum(after, 3)+" s", t.verdict(fmt.Sprintf("<= %.0f s", goalBurstSeconds), after <= goalBurstSeconds), "")
	t.row("  responders missing once the routes were in", r.str("burst_flows_not_done_when_routes_done"), "", "")
	t.row("  deleted again: routes gone after the last Delete", fmtNum(r.num("unburst_routes_after_last_ack_seconds"), 3)+" s", "", "")
}

func (t *table) restart() {
	missingR := sum(t.over("restart%d_route_samples_missing"))
	missingF := sum(t.over("restart%d_flow_samples_missing"))
	delR := sum(t.over("restart%d_route_del_events"))
	delF := sum(t.over("restart%d_flow_deleted_events"))
	lost := sum(t.over("restart%d_route_sub_errors")) + sum(t.over("restart%d_flow_monitor_paused"))
	verdict := t.verdict("zero missing", missingR+missingF+delR+delF == 0)
	if lost > 0 {
		verdict += fmt.Sprintf(" (watchers lost events %.0f times)", lost)
	}
	t.row("restart: restart-agent -> synced", t.secs(t.over("restart%d_cmd_to_full_sync_s")), "", t.r.str("restart1_load"))
	t.row("restart: new agent start -> synced", t.secs(t.over("restart%d_full_sync_s")), "", "")
	t.row("restart: samples with a route missing", fmtNum(missingR, 0)+" of "+fmtNum(sum(t.over("restart%d_route_samples")), 0), verdict, "")
	t.row("restart: samples with a flow missing", fmtNum(missingF, 0)+" of "+fmtNum(sum(t.over("restart%d_flow_samples")), 0), "", "")
	t.row("restart: route / flow deletions seen", fmtNum(delR, 0)+" / "+fmtNum(delF, 0), "", "")
	t.row("restart: longest gap between route samples", fmtNum(median(t.over("restart%d_route_max_gap_ms")), 1)+" ms (median of runs)", "", "")
}

func (t *table) resources() {
	r := t.r
	// Every cold start and restart is a new agent process: the peak is
	// the largest of the last cold-started one (through heartbeats,
	// incremental changes and the burst) and of each restarted one.
	main := r.num("post_run_agent_vmhwm_mb")
	restarted := t.over("restart%d_after_agent_vmhwm_mb")
	_, restartMax := minMax(restarted)
	peak := math.Max(main, restartMax)
	if math.IsNaN(main) || math.IsNaN(restartMax) {
		peak = math.NaN()
	}
	t.row("memory: agent peak RSS (VmHWM), whole run", fmtNum(peak, 1)+" MB", t.verdict(fmt.Sprintf("<= %.0f MB", goalPeakRSSMB), peak <= goalPeakRSSMB), "")
	t.row("  cold-started agent, after all phases", fmtNum(main, 1)+" MB", "", "")
	t.row("  cold-started agent, right after its full sync", fmtNum(median(t.over("cold%d_after_agent_vmhwm_mb")), 1)+" MB", "", "")
	t.row("  restarted agent (max of runs)", fmtNum(restartMax, 1)+" MB", "", "")
	t.row("CPU: agent, cold start", fmtNum(median(t.over("cold%d_after_agent_cpu_s")), 2)+" s", "", "")
	t.row("CPU: ovs-vswitchd during cold start", fmtNum(median(sub(t.over("cold%d_after_vswitchd_cpu_s"), t.over("cold%d_before_vswitchd_cpu_s"))), 2)+" s", "", "")
	t.row("CPU: kube-apiserver during cold start", fmtNum(median(sub(t.over("cold%d_after_apiserver_cpu_s"), t.over("cold%d_before_apiserver_cpu_s"))), 2)+" s", "", "")
	t.row("CPU: agent, restart (start -> synced + 1 s)", fmtNum(median(t.over("restart%d_after_agent_cpu_s")), 2)+" s", "", "")
	t.row(fmt.Sprintf("create %d Nodes (%s workers) / all routes", t.n, r.str("create_workers")), fmtNum(r.num("create_seconds"), 2)+" s / "+fmtNum(r.num("create_routes_seconds"), 2)+" s", "", r.str("create_load"))
}
