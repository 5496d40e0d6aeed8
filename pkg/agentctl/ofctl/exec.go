package ofctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Target is a bridge and the OVS run directory holding its OpenFlow
// management socket.
type Target struct {
	RunDir string
	Bridge string
}

// Socket is the bridge's management socket, <run dir>/<bridge>.mgmt.
func (t Target) Socket() string { return filepath.Join(t.RunDir, t.Bridge+".mgmt") }

// AllTables dumps every table.
const AllTables = -1

// DumpOptions select what DumpFlows returns.
type DumpOptions struct {
	// Table is a table ID, or AllTables.
	Table int
	// NoStats leaves out durations and counters.
	NoStats bool
}

// Dumper reads a bridge's flows. Exec is the real one; tests use fakes fed
// with captured output.
type Dumper interface {
	DumpFlows(ctx context.Context, t Target, opts DumpOptions) ([]Flow, error)
}

// DefaultTimeout bounds one ovs-ofctl run.
const DefaultTimeout = 10 * time.Second

// Exec runs ovs-ofctl.
type Exec struct {
	// Binary is ovs-ofctl's path; empty means ovs-ofctl in PATH or in
	// the sbin/bin directories.
	Binary string
	// Timeout bounds each run (DefaultTimeout when 0).
	Timeout time.Duration
}

var _ Dumper = Exec{}

// Error is a failed ovs-ofctl run.
type Error struct {
	// Command is the command line that was run.
	Command string
	// Stderr is what ovs-ofctl said, trimmed.
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Command, e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNoSocket is wrapped by DumpFlows' error when the bridge's management
// socket does not exist.
var ErrNoSocket = errors.New("no OpenFlow management socket")

// Args returns ovs-ofctl's arguments for a dump. --names makes the output
// the same whether or not stdout is a terminal (ovs-ofctl otherwise prints
// a reply header and idle_age when it is not); it names ports in matches
// and actions.
func (e Exec) Args(t Target, opts DumpOptions) []string {
	args := []string{fmt.Sprintf("--timeout=%d", int(math.Ceil(e.timeout().Seconds()))), "--names", "dump-flows", "unix:" + t.Socket()}
	if opts.Table != AllTables {
		args = append(args, fmt.Sprintf("table=%d", opts.Table))
	}
	if opts.NoStats {
		args = append(args, "--no-stats")
	}
	return args
}

func (e Exec) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

// DumpFlows runs `ovs-ofctl dump-flows unix:<socket> [table=N]
// [--no-stats]` and parses its output.
func (e Exec) DumpFlows(ctx context.Context, t Target, opts DumpOptions) ([]Flow, error) {
	if _, err := os.Stat(t.Socket()); err != nil {
		return nil, fmt.Errorf("%w at %s (%v): is ovs-vswitchd running with this run directory, and does bridge %s exist?", ErrNoSocket, t.Socket(), errors.Unwrap(err), t.Bridge)
	}
	bin, err := e.binary()
	if err != nil {
		return nil, err
	}
	args := e.Args(t, opts)
	ctx, cancel := context.WithTimeout(ctx, e.timeout()+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+t.RunDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &Error{Command: "ovs-ofctl " + strings.Join(args, " "), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	flows, err := Parse(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("ovs-ofctl %s: %w", strings.Join(args, " "), err)
	}
	return flows, nil
}

// binary finds ovs-ofctl.
func (e Exec) binary() (string, error) {
	if e.Binary != "" {
		return e.Binary, nil
	}
	return findBinary("ovs-ofctl")
}

// findBinary finds an OVS tool: in PATH, then where Debian and source
// builds put it (a non-login root shell may lack the sbin directories).
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/sbin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH: install openvswitch-common, or run agentctl in the agent's container (kubectl exec -n kube-system <agent pod> -c agent -- agentctl ...)", name)
}
