package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// klogHeader matches klog's line header: Lmmdd hh:mm:ss.uuuuuu.
var klogHeader = regexp.MustCompile(`^([IWEF])(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) `)

// startHeader is the line hack/local-cluster.sh writes before each start:
// "==== 2026-11-24T22:41:20+0000: starting ...", which gives the year.
var startHeader = regexp.MustCompile(`^==== (\d{4})-`)

// logEvent is one start-up milestone of the agent's log.
type logEvent struct {
	key  string
	subs []string // every one must be in the line
}

var logEvents = []logEvent{
	{"start", []string{`"Starting noderoute-agent"`}},
	{"bridge", []string{`"Configured OVS bridge"`}},
	{"of_connected", []string{`"Connected to OpenFlow switch"`}},
	{"base_flows", []string{`"Installed base flows"`}},
	{"informer_populated", []string{`"Caches populated"`, `*v1.Node`}},
	{"gateway", []string{`"Gateway interface configured"`}},
	{"cache_synced", []string{`"Caches are synced"`, `NodeRouteController`}},
	{"full_sync", []string{`"First full sync done"`}},
}

const nodeInstalledMsg = `"Installed routes and flows of node"`

func parseKlogTime(line string, year int) (time.Time, bool) {
	m := klogHeader.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	// m[1] is the severity; then month, day, hour, minute, second, µs.
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+2])
	}
	return time.Date(year, time.Month(n[0]), n[1], n[2], n[3], n[4], n[5]*1000, time.Local), true
}

func runLogTimes(args []string) error {
	fs := flag.NewFlagSet("logtimes", flag.ContinueOnError)
	logFile := fs.String("log", "", "the agent's log file")
	fromLine := fs.Int("from-line", 0, "ignore the first N lines (those of earlier runs)")
	prefix := fs.String("prefix", "log", "prefix of the result keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	year := time.Now().Year()
	found := map[string]time.Time{}
	var fullSyncLine string
	var installs []time.Time
	errorsSeen := 0
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if lineNo <= *fromLine {
			continue
		}
		line := sc.Text()
		if m := startHeader.FindStringSubmatch(line); m != nil {
			year, _ = strconv.Atoi(m[1])
			continue
		}
		t, ok := parseKlogTime(line, year)
		if !ok {
			continue
		}
		if line[0] == 'E' && found["full_sync"].IsZero() {
			errorsSeen++
		}
		for _, ev := range logEvents {
			if _, done := found[ev.key]; done {
				continue
			}
			all := true
			for _, s := range ev.subs {
				if !strings.Contains(line, s) {
					all = false
					break
				}
			}
			if all {
				found[ev.key] = t
				if ev.key == "full_sync" {
					fullSyncLine = line
				}
			}
		}
		if _, started := found["cache_synced"]; started && found["full_sync"].IsZero() && strings.Contains(line, nodeInstalledMsg) {
			installs = append(installs, t)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	start, ok := found["start"]
	if !ok {
		return fmt.Errorf("no \"Starting noderoute-agent\" line after line %d of %s", *fromLine, *logFile)
	}
	if found["full_sync"].IsZero() {
		return fmt.Errorf("no \"First full sync done\" line after line %d of %s", *fromLine, *logFile)
	}
	result(*prefix+"_start_unix", fmt.Sprintf("%.6f", float64(start.UnixNano())/1e9))
	result(*prefix+"_full_sync_unix", fmt.Sprintf("%.6f", float64(found["full_sync"].UnixNano())/1e9))
	for _, ev := range logEvents[1:] {
		if t, ok := found[ev.key]; ok {
			result(*prefix+"_"+ev.key+"_s", t.Sub(start).Seconds())
		}
	}
	if t, ok := found["cache_synced"]; ok {
		result(*prefix+"_synced_to_full_sync_s", found["full_sync"].Sub(t).Seconds())
	}
	if m := regexp.MustCompile(`remoteNodes=(\d+)`).FindStringSubmatch(fullSyncLine); m != nil {
		result(*prefix+"_remote_nodes", m[1])
	}
	if m := regexp.MustCompile(`duration="([^"]+)"`).FindStringSubmatch(fullSyncLine); m != nil {
		if d, err := time.ParseDuration(m[1]); err == nil {
			result(*prefix+"_full_sync_field_s", d.Seconds())
		}
	}
	// The phases of the full sync (agents since the batched full sync
	// log them): responders in, routes in, old responders out.
	for _, phase := range []string{"flowsPhase", "routesPhase", "oldFlowsPhase"} {
		if m := regexp.MustCompile(phase + `="([^"]+)"`).FindStringSubmatch(fullSyncLine); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				result(*prefix+"_"+phase+"_s", d.Seconds())
			}
		}
	}
	result(*prefix+"_errors", errorsSeen)
	// The per-Node lines of the first full sync (at -v=4 since the full
	// sync is batched; at info before) show how the time per Node evolves
	// as more Nodes are installed.
	result(*prefix+"_node_lines", len(installs))
	if n := len(installs); n >= 20 {
		synced := found["cache_synced"]
		result(*prefix+"_synced_to_first_node_s", installs[0].Sub(synced).Seconds())
		result(*prefix+"_nodes_s", installs[n-1].Sub(installs[0]).Seconds())
		result(*prefix+"_last_node_to_full_sync_s", found["full_sync"].Sub(installs[n-1]).Seconds())
		tenth := n / 10
		first := installs[tenth].Sub(installs[0]) / time.Duration(tenth)
		last := installs[n-1].Sub(installs[n-1-tenth]) / time.Duration(tenth)
		result(*prefix+"_per_node_first10pct_us", float64(first.Microseconds()))
		result(*prefix+"_per_node_last10pct_us", float64(last.Microseconds()))
	}
	return nil
}
