package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/cleanup"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/pkg/route"
)

const cleanupUsageHeader = `noderoute-agent cleanup removes from this node what noderoute-agent put
there, and nothing else:
  - routes with protocol 94 in the main table (IPv4 and IPv6),
  - flows with noderoute's cookies (any round but 0) in tables 0, 20, 21, 22,
  - the gateway addresses the agent recorded, on a gateway port it did not
    create, and noderoute's external_ids keys on a bridge it did not create,
  - the gateway port and the bridge, only if the agent created them
    (external_ids:noderoute-owner=noderoute-agent); a bridge the operator
    made stays, with the agent's flows removed.
Foreign routes, flows, ports and bridges are never touched. It refuses to run
while an agent answers on --api-socket (an agent would put everything back);
--dry-run then still lists, with a note.
Run it again to check: it then says "nothing to remove".

Exit status: 0 clean (or, with --dry-run, the listing done), 1 something could
not be read or removed (each one named on a FAILED line) or an agent runs,
2 a bad flag.

Usage:
  noderoute-agent cleanup [--dry-run] [flags]

Examples:
  # What would go, with the agent's own config file:
  noderoute-agent cleanup --dry-run --config /etc/noderoute/agent.yaml
  # On a host with a userspace OVS whose sockets are in /tmp/ovs:
  noderoute-agent cleanup --ovs-rundir=/tmp/ovs

It takes the agent's flags and config file (below); only --ovs-bridge,
--ovs-rundir, --gateway-interface and --api-socket matter to it, the node
name is not needed.

Flags:
`

// cleanupTimeout bounds a whole cleanup: it reads and deletes a few
// thousand objects at most, in seconds.
const cleanupTimeout = 2 * time.Minute

func runCleanup(args []string) int {
	fs := newFlagSet("noderoute-agent cleanup")
	dryRun := fs.Bool("dry-run", false, "print what would be removed, change nothing")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), cleanupUsageHeader)
		fs.PrintDefaults()
	}
	fs.SetOutput(discardUnlessHelp{args})
	cfg, err := config.ParseForCleanup(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "noderoute-agent cleanup: %v\n", err)
		return 2
	}
	defer klog.Flush()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	ns, err := route.CurrentNamespace()
	if err == nil {
		defer ns.Close()
		err = cleanup.Run(ctx, cleanup.Options{Config: cfg, DryRun: *dryRun, Out: os.Stdout, Namespace: ns})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "noderoute-agent cleanup: %v\n", err)
		return 1
	}
	return 0
}
