//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// runUntilDone starts c (running the command name) and waits for it; when
// ctx is done first, it calls interrupt (which must make the command stop
// as on SIGINT), waits up to 10 s for it to exit, then kills c. Both
// providers' ExecInterruptible use it; they differ in how the interrupt
// reaches the command.
func runUntilDone(ctx context.Context, c *exec.Cmd, name string, interrupt func()) error {
	if err := c.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	interrupt()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = c.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within 10 s of SIGINT", name)
	}
}

// parseProcStatus reads /proc/<pid>/status's "Key:\tvalue" lines.
func parseProcStatus(s string) map[string]string {
	status := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			status[k] = strings.TrimSpace(v)
		}
	}
	return status
}
