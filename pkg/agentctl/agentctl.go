// Package agentctl is the logic of the agentctl command: it shows the OVS
// flows and routes the noderoute agent programs on this node, maps them to
// the Nodes they serve, checks them against what the Nodes want, and
// traces the kernel's address resolution of a remote gateway through the
// bridge.
//
// Sources: the agent's local API (what the Nodes want as the agent
// computed it, bridge, OVS run directory, flow round), `ovs-ofctl
// dump-flows` for the flows (printed verbatim in text mode), `ovs-appctl
// ofproto/trace` for traces, netlink for the routes and the gateway
// interface. Each sits behind a small interface (Env) so that tests can
// run the commands in-process against fakes or a throwaway bridge.
package agentctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/route"
	"github.com/noderoute/noderoute/pkg/version"
)

// Exit codes.
const (
	// ExitOK: the command did what was asked; for check, no drift.
	ExitOK = 0
	// ExitDrift: check found flows or routes that differ from what the
	// Nodes want.
	ExitDrift = 1
	// ExitError: bad usage, or the agent, OVS or netlink could not be
	// read.
	ExitError = 2
)

// Defaults used when the agent's API does not answer and no flag says
// otherwise; they are the agent's own defaults.
const (
	DefaultBridge    = "br-int"
	DefaultOVSRunDir = "/var/run/openvswitch"
)

// RouteLister lists the routes the agent owns (route.Interface has it).
type RouteLister interface {
	ListRoutes() ([]route.Route, error)
}

// AgentClient fetches the agent's state (*apiserver.Client is one).
type AgentClient interface {
	State(ctx context.Context) (*apiserver.State, error)
}

// Env is what the commands read from and write to. Zero fields get the
// real thing: ovs-ofctl, netlink, the unix-socket API client.
type Env struct {
	Stdout, Stderr io.Writer
	// Flows dumps a bridge's flows.
	Flows ofctl.Dumper
	// Routes opens a route lister in the network namespace at netnsPath
	// ("" for agentctl's own); the returned func releases it.
	Routes func(netnsPath string) (RouteLister, func(), error)
	// Agent returns a client of the local API at socket.
	Agent func(socket string, timeout time.Duration) AgentClient
	// Tracer runs ofproto/trace.
	Tracer ofctl.Tracer
	// Gateway reads the gateway interface called name in the network
	// namespace at netnsPath ("" for agentctl's own).
	Gateway func(netnsPath, name string) (*GatewayInterface, error)
}

func (e *Env) defaults() {
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Routes == nil {
		e.Routes = netlinkRoutes
	}
	if e.Gateway == nil {
		e.Gateway = netlinkGateway
	}
	if e.Agent == nil {
		e.Agent = func(socket string, timeout time.Duration) AgentClient {
			return apiserver.NewClient(socket, timeout)
		}
	}
}

// Main runs agentctl with the process's arguments, stopping on SIGINT and
// SIGTERM, and returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, Env{})
}

// APISocketEnv, when set, is the default of --api-socket: where several
// agents share a host (hack/local-cluster.sh runs one per network
// namespace), each node's shell points agentctl at its own agent.
const APISocketEnv = "NODEROUTE_API_SOCKET"

func defaultAPISocket() string {
	if s := os.Getenv(APISocketEnv); s != "" {
		return s
	}
	return apiserver.DefaultSocket
}

// globals are the flags every command takes.
type globals struct {
	apiSocket string
	ovsRunDir string
	bridge    string
	netns     string
	timeout   time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.apiSocket, "api-socket", g.apiSocket, "the agent's local API socket (default $"+APISocketEnv+" if set)")
	fs.StringVar(&g.ovsRunDir, "ovs-rundir", g.ovsRunDir, "OVS run directory holding <bridge>.mgmt (default: the agent's, else "+DefaultOVSRunDir+")")
	fs.StringVar(&g.bridge, "bridge", g.bridge, "OVS bridge (default: the agent's, else "+DefaultBridge+")")
	fs.StringVar(&g.netns, "netns", g.netns, "network namespace (a path such as /var/run/netns/NAME) to read routes and the gateway interface in (default: agentctl's own)")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "how long to wait for the agent and for ovs-ofctl")
}

const usage = `agentctl shows what the noderoute agent programs on this node: the OVS
flows and the routes that reach the other Nodes' pods, which Node each one
serves, and whether they match what the Nodes want.

Usage:
  agentctl [global flags] <command> [flags]

Commands:
  flows     the bridge's flows in ovs-ofctl dump-flows syntax, per table
  routes    the routes the agent owns (proto 94) and the Node of each
  check     compare what the Nodes want with the bridge and the routing
            table; exit status 1 when they differ
  trace     trace the kernel's ARP request or Neighbor Solicitation for a
            remote gateway through the bridge (ovs-appctl ofproto/trace);
            exit status 1 when it is not answered
  version   agentctl's version and the agent's

Examples:
  agentctl flows --table ArpResponder --no-stats
  agentctl flows --node worker2 -o json
  agentctl routes
  agentctl check || echo "drift on this node"
  agentctl trace --node worker2
  agentctl trace 10.222.2.1 -o json
  kubectl exec -n kube-system <noderoute-agent pod> -c agent -- agentctl check

Run 'agentctl <command> --help' for a command's flags.

Global flags (also accepted after the command):
%s
Where the data comes from: the agent's local API (--api-socket) says what
the Nodes want, the bridge, the OVS run directory and the flow round;
'ovs-ofctl dump-flows' reads the flows, 'ovs-appctl ofproto/trace' traces
packets; netlink reads the routes and the gateway interface. flows, routes
and trace of a gateway IP work without the agent (without Node names);
check and trace --node need it.

Exit status: 0 done (check: no drift; trace: answered), 1 drift found by
check or a request trace found unanswered, 2 error.
`

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	// arguments describes the positional arguments the command takes
	// ("" for none); they may come before, between or after the flags.
	arguments string
	// flags registers the command's own flags and returns its run func.
	flags func(fs *flag.FlagSet, a *app) func(ctx context.Context) int
}

var commands = []command{flowsCommand, routesCommand, checkCommand, traceCommand, versionCommand}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// app is one agentctl run.
type app struct {
	env Env
	g   globals
	// args are the command's positional arguments.
	args []string
}

// Run runs agentctl with args (without the program name) and returns the
// exit code. Output goes to env.Stdout, messages to env.Stderr.
func Run(ctx context.Context, args []string, env Env) int {
	env.defaults()
	a := &app{env: env, g: globals{apiSocket: defaultAPISocket(), timeout: 10 * time.Second}}

	top := flag.NewFlagSet("agentctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	a.g.register(top)
	top.Usage = func() {}
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printUsage(env.Stdout)
			return ExitOK
		}
		return a.usageError("", err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		a.printUsage(env.Stderr)
		return ExitError
	}
	name, cmdArgs := rest[0], rest[1:]
	if name == "help" {
		if len(cmdArgs) == 0 {
			a.printUsage(env.Stdout)
			return ExitOK
		}
		name, cmdArgs = cmdArgs[0], []string{"--help"}
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(env.Stderr, "agentctl: unknown command %q (commands: %s); see agentctl --help\n", name, commandNames())
		return ExitError
	}
	fs := flag.NewFlagSet("agentctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := cmd.flags(fs, a)
	a.g.register(fs)
	// The flag package stops at the first argument that is not a flag:
	// take it and go on, so that "trace 10.222.2.1 -o json" works.
	for {
		if err := fs.Parse(cmdArgs); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.printCommandUsage(env.Stdout, cmd, fs)
				return ExitOK
			}
			return a.usageError(cmd.name, err)
		}
		if fs.NArg() == 0 {
			break
		}
		if cmd.arguments == "" {
			return a.usageError(cmd.name, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
		}
		a.args = append(a.args, fs.Arg(0))
		cmdArgs = fs.Args()[1:]
	}
	if a.g.timeout <= 0 {
		return a.usageError(cmd.name, fmt.Errorf("--timeout must be positive"))
	}
	return runCmd(ctx)
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

func (a *app) printUsage(w io.Writer) {
	fs := flag.NewFlagSet("agentctl", flag.ContinueOnError)
	g := globals{apiSocket: defaultAPISocket(), timeout: 10 * time.Second}
	g.register(fs)
	fmt.Fprintf(w, usage, flagDefaults(fs))
}

func (a *app) printCommandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	synopsis := cmd.name + " [flags]"
	if cmd.arguments != "" {
		synopsis += " " + cmd.arguments
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  agentctl %s\n\n%s\nFlags (global flags included):\n%s", cmd.summary, synopsis, cmd.usage, flagDefaults(fs))
}

func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

func (a *app) usageError(cmd string, err error) int {
	prog, help := "agentctl", "agentctl --help"
	if cmd != "" {
		prog, help = "agentctl "+cmd, "agentctl "+cmd+" --help"
	}
	fmt.Fprintf(a.env.Stderr, "%s: %v (see %s)\n", prog, err, help)
	return ExitError
}

// fail prints err as one line and returns ExitError.
func (a *app) fail(cmd string, err error) int {
	fmt.Fprintf(a.env.Stderr, "agentctl %s: %v\n", cmd, err)
	return ExitError
}

func (a *app) warn(format string, args ...interface{}) {
	fmt.Fprintf(a.env.Stderr, "agentctl: warning: "+format+"\n", args...)
}

// agentState asks the agent for its state.
func (a *app) agentState(ctx context.Context) (*apiserver.State, error) {
	ctx, cancel := context.WithTimeout(ctx, a.g.timeout)
	defer cancel()
	st, err := a.env.Agent(a.g.apiSocket, a.g.timeout).State(ctx)
	if err != nil {
		var ue *apiserver.UnreachableError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%w (is noderoute-agent running on this node? Point --api-socket at its socket; inside the agent's container it is %s)", err, apiserver.DefaultSocket)
		}
		return nil, err
	}
	return st, nil
}

// target is the bridge to read: flags first, then the agent's, then the
// defaults.
func (a *app) target(st *apiserver.State) ofctl.Target {
	t := ofctl.Target{RunDir: a.g.ovsRunDir, Bridge: a.g.bridge}
	if t.RunDir == "" {
		if st != nil && st.OVSRunDir != "" {
			t.RunDir = st.OVSRunDir
		} else {
			t.RunDir = DefaultOVSRunDir
		}
	}
	if t.Bridge == "" {
		if st != nil && st.Bridge != "" {
			t.Bridge = st.Bridge
		} else {
			t.Bridge = DefaultBridge
		}
	}
	return t
}

func (a *app) dumper() ofctl.Dumper {
	if a.env.Flows != nil {
		return a.env.Flows
	}
	return ofctl.Exec{Timeout: a.g.timeout}
}

// listRoutes lists the agent's routes in the namespace of --netns.
func (a *app) listRoutes() ([]route.Route, error) {
	lister, release, err := a.env.Routes(a.g.netns)
	if err != nil {
		return nil, err
	}
	defer release()
	routes, err := lister.ListRoutes()
	if err != nil {
		where := "this network namespace"
		if a.g.netns != "" {
			where = "network namespace " + a.g.netns
		}
		return nil, fmt.Errorf("list routes in %s: %w", where, err)
	}
	return routes, nil
}

var versionCommand = command{
	name:    "version",
	summary: "Print agentctl's version and, if it answers, the agent's.",
	usage:   "Examples:\n  agentctl version\n",
	flags: func(fs *flag.FlagSet, a *app) func(context.Context) int {
		return func(ctx context.Context) int {
			fmt.Fprintf(a.env.Stdout, "agentctl: %s\n", version.String())
			st, err := a.agentState(ctx)
			if err != nil {
				fmt.Fprintf(a.env.Stdout, "agent:    unknown (%v)\n", err)
				return ExitOK
			}
			fmt.Fprintf(a.env.Stdout, "agent:    %s on node %s (API %s at %s)\n", st.AgentVersion, st.NodeName, st.APIVersion, a.g.apiSocket)
			return ExitOK
		}
	},
}
