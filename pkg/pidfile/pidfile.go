// Package pidfile tracks detached daemons by the pid files they (or their
// starter) write: reading them, telling a live process from a dead one, and
// stopping one. The local cluster (hack/local-cluster.sh and its tool)
// runs its daemons this way, since they outlive the command that started
// them.
package pidfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Read returns the pid in path: the digits it holds, as the shell's
// `tr -dc 0-9` reads them. A missing file is (0, nil).
func Read(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var digits []byte
	for _, c := range b {
		if c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) == 0 {
		return 0, nil
	}
	pid, err := strconv.Atoi(string(digits))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

// Write writes pid to path through a rename, so that a reader never sees
// a partial file.
func Write(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Alive reports whether pid is a running process. A zombie counts as gone:
// it does nothing and is reaped by init.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which ends with the last ')'.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// AliveIn reads path and reports the pid and whether it is running.
func AliveIn(path string) (int, bool) {
	pid, err := Read(path)
	if err != nil {
		return 0, false
	}
	return pid, Alive(pid)
}

// CmdlineContains reports whether pid's command line contains s, so that a
// stale pid file whose pid was reused by something else is never signalled.
func CmdlineContains(pid int, s string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), s)
}

// Stop sends SIGTERM to pid and waits up to grace for it to go, then sends
// SIGKILL and waits up to 10 s more. It reports whether SIGKILL was needed.
func Stop(pid int, grace time.Duration) (killed bool, err error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("SIGTERM %d: %w", pid, err)
	}
	if WaitGone(pid, grace) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("SIGKILL %d: %w", pid, err)
	}
	if !WaitGone(pid, 10*time.Second) {
		return true, fmt.Errorf("process %d survives SIGKILL", pid)
	}
	return true, nil
}

// WaitGone waits up to timeout for pid to stop being Alive.
func WaitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for Alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
