// Command noderoute-agent runs on every node: for every other Node of the
// cluster it installs an ARP (IPv4) or NDP (IPv6) responder flow in OVS and
// an onlink route to each of that Node's pod CIDRs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/version"
)

const usageHeader = `noderoute-agent programs this node for every other Node of the cluster:
an ARP responder flow in OVS (table 20 of the bridge, OpenFlow 1.3) that
answers for the Node's gateway IP with the virtual MAC, and an onlink route
<podCIDR> via <gateway IP> dev <gateway interface>. IPv6 pod CIDRs (dual-stack
or IPv6-only) get the same, with an NDP responder (tables 21 and 22) that
answers Neighbor Solicitations instead.

Usage:
  noderoute-agent [flags]
  noderoute-agent cleanup [--dry-run] [flags]   remove what the agent put on
                                                this node (cleanup --help)

Examples:
  # In a DaemonSet (NODE_NAME from the downward API, in-cluster config):
  noderoute-agent --config /etc/noderoute/agent.yaml
  # On a host with a userspace OVS whose sockets are in /tmp/ovs:
  noderoute-agent --node-name=worker1 --kubeconfig=$HOME/.kube/config \
      --ovs-rundir=/tmp/ovs --ovs-datapath-type=netdev

Flags:
`

// newFlagSet is a flag set with, of klog's many flags, the two an operator
// needs (-v, -vmodule); logs go to stderr, which the container runtime
// collects. The agent and its cleanup command share it.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.Var(klogFlags.Lookup(name).Value, name, klogFlags.Lookup(name).Usage)
	}
	return fs
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "cleanup" {
		return runCleanup(args[1:])
	}
	fs := newFlagSet("noderoute-agent")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	// Parse errors print usage by default; we print one line instead.
	fs.SetOutput(discardUnlessHelp{args})
	cfg, err := config.Parse(fs, args)
	if *showVersion {
		fmt.Println("noderoute-agent", version.String())
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "noderoute-agent: %v\n", err)
		return 2
	}
	defer klog.Flush()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, cfg); err != nil {
		klog.ErrorS(err, "noderoute-agent failed")
		return 1
	}
	return 0
}

// discardUnlessHelp sends the flag package's output (usage) to stdout when
// help was asked for, and nowhere otherwise.
type discardUnlessHelp struct{ args []string }

func (d discardUnlessHelp) Write(p []byte) (int, error) {
	for _, a := range d.args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			return os.Stdout.Write(p)
		}
	}
	return len(p), nil
}
