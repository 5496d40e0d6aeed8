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
	"strconv"
	"strings"
	"time"
)

// Tracer runs OVS's own tracer on a flow. AppctlExec is the real one; tests
// use fakes fed with captured output.
type Tracer interface {
	// Trace runs `ovs-appctl ofproto/trace <bridge> <flow>` against the
	// bridge's ovs-vswitchd and returns its output.
	Trace(ctx context.Context, t Target, flow string) (string, error)
}

// AppctlExec runs ovs-appctl.
type AppctlExec struct {
	// Binary is ovs-appctl's path; empty means ovs-appctl in PATH or in
	// the sbin/bin directories.
	Binary string
	// Timeout bounds each run (DefaultTimeout when 0).
	Timeout time.Duration
}

var _ Tracer = AppctlExec{}

// ErrNoVswitchd is wrapped by Trace's error when no control socket of
// ovs-vswitchd is found in the run directory.
var ErrNoVswitchd = errors.New("no control socket of ovs-vswitchd")

// ControlSocket finds ovs-vswitchd's unixctl socket in the run directory:
// <rundir>/ovs-vswitchd.<pid>.ctl, the default, with the pid read from
// ovs-vswitchd.pid; else <rundir>/ovs-vswitchd.ctl, where the daemon was
// started with --unixctl=<rundir>/ovs-vswitchd.ctl (the local cluster and
// the tests' OVS instances do that).
func ControlSocket(runDir string) (string, error) {
	var tried []string
	if b, err := os.ReadFile(filepath.Join(runDir, "ovs-vswitchd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			p := filepath.Join(runDir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid))
			if isSocket(p) {
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	p := filepath.Join(runDir, "ovs-vswitchd.ctl")
	if isSocket(p) {
		return p, nil
	}
	tried = append(tried, p)
	return "", fmt.Errorf("%w in %s (tried %s): is ovs-vswitchd running with this run directory?", ErrNoVswitchd, runDir, strings.Join(tried, ", "))
}

func isSocket(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode()&os.ModeSocket != 0
}

// Args returns ovs-appctl's arguments for a trace through the control
// socket ctl.
func (e AppctlExec) Args(ctl string, t Target, flow string) []string {
	return []string{"--timeout=" + strconv.Itoa(e.timeoutSeconds()), "-t", ctl, "ofproto/trace", t.Bridge, flow}
}

func (e AppctlExec) timeoutSeconds() int {
	return int(math.Ceil(e.timeout().Seconds()))
}

func (e AppctlExec) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

// Trace runs `ovs-appctl -t <ctl> ofproto/trace <bridge> <flow>`.
func (e AppctlExec) Trace(ctx context.Context, t Target, flow string) (string, error) {
	ctl, err := ControlSocket(t.RunDir)
	if err != nil {
		return "", err
	}
	bin := e.Binary
	if bin == "" {
		if bin, err = findBinary("ovs-appctl"); err != nil {
			return "", err
		}
	}
	args := e.Args(ctl, t, flow)
	ctx, cancel := context.WithTimeout(ctx, e.timeout()+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+t.RunDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &Error{Command: "ovs-appctl " + strings.Join(args, " "), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.String(), nil
}
