// Command nrbench is the measuring half of hack/bench.sh (make bench): it
// does the Kubernetes API side of the benchmark and the timing that needs
// more precision than a shell has, and prints its results as lines
//
//	NRBENCH key=value
//
// that hack/bench.sh collects into its table. It is meant to run inside the
// node's network namespace of a local cluster (hack/local-cluster.sh), where
// both the API server (over the underlay) and the agent's metrics endpoint
// are reachable; route polling always goes through a netlink handle made with
// netlink.NewHandleAt on --route-netns, so it reads that namespace whatever
// namespace nrbench itself runs in.
//
// Remote Nodes are named bench-<i> and get the pod CIDR
// 10.(128+i/256).(i%256).0/24, gateway .1 (see cidrOf).
//
// Commands:
//
//	create       create Nodes bench-<start>..<start+count-1> concurrently, wait for their routes
//	delete       delete them concurrently, wait until their routes are gone
//	incremental  add, then delete, Nodes one at a time; latency to flow+route present/absent
//	sample       watch routes and flows without gaps while the agent restarts
//	logtimes     timestamps of the agent's start-up log lines
//	heartbeat    status-only Node updates at a rate; agent CPU per update, syncs they caused
//	table        the table of one N, from its results file
//	procstat     peak RSS and CPU seconds of processes
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

var commands = map[string]struct {
	run   func(args []string) error
	usage string
}{
	"create":      {runCreate, "create Nodes bench-<start>..<start+count-1> concurrently and wait until their routes are in --route-netns"},
	"delete":      {runDelete, "delete Nodes bench-<start>..<start+count-1> concurrently and wait until their routes are gone from --route-netns"},
	"incremental": {runIncremental, "add then delete --count Nodes one at a time, measuring API call return -> flow and route present/absent"},
	"sample":      {runSample, "sample routes (netlink) and flows (ovs-ofctl) and watch route/flow deletions until --stop-file appears"},
	"logtimes":    {runLogTimes, "print the timestamps of the agent's start-up log lines after a given line"},
	"heartbeat":   {runHeartbeat, "send status-only Node updates (heartbeat times) at a steady rate; agent CPU per update and whether any reached a sync"},
	"table":       {runTable, "print the table of one N from hack/bench.sh's results-<N>.txt, with the goals' verdicts"},
	"procstat":    {runProcStat, "print VmHWM, VmRSS and CPU seconds (utime+stime) of pids"},
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "nrbench: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "nrbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: nrbench COMMAND [FLAGS]   (COMMAND -h for its flags)")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, commands[n].usage)
	}
}

// result prints one machine-readable line for hack/bench.sh.
func result(key string, value interface{}) {
	s := fmt.Sprint(value)
	if f, ok := value.(float64); ok {
		s = fmt.Sprintf("%.6f", f)
	}
	s = strings.ReplaceAll(s, "\n", " ")
	fmt.Printf("NRBENCH %s=%s\n", key, s)
}

// note prints a human-readable progress line on stderr.
func note(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "[nrbench] "+format+"\n", args...)
}
