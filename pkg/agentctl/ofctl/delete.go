package ofctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DelFlows runs `ovs-ofctl -O OpenFlow13 del-flows unix:<socket> -` with
// specs (one `ovs-ofctl` flow match per line, e.g.
// "table=20,cookie=0x1000000000000/0xffff000000000000") on its standard
// input: one run for any number of deletes. OpenFlow 1.3 because cookie
// masks and table IDs in a delete need it (or extensions) and the agent's
// bridges speak it.
func (e Exec) DelFlows(ctx context.Context, t Target, specs []string) error {
	if len(specs) == 0 {
		return nil
	}
	if _, err := os.Stat(t.Socket()); err != nil {
		return fmt.Errorf("%w at %s (%v): is ovs-vswitchd running with this run directory, and does bridge %s exist?", ErrNoSocket, t.Socket(), errors.Unwrap(err), t.Bridge)
	}
	bin, err := e.binary()
	if err != nil {
		return err
	}
	args := []string{fmt.Sprintf("--timeout=%d", int(math.Ceil(e.timeout().Seconds()))), "-O", "OpenFlow13", "del-flows", "unix:" + t.Socket(), "-"}
	ctx, cancel := context.WithTimeout(ctx, e.timeout()+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+t.RunDir)
	cmd.Stdin = strings.NewReader(strings.Join(specs, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &Error{Command: "ovs-ofctl " + strings.Join(args, " "), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return nil
}
