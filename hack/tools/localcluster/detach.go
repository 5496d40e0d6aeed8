package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
	"github.com/noderoute/noderoute/pkg/pidfile"
)

// startDetached starts a control-plane component in a session of its own,
// stdio on its log (appended, after a "==== <time>: starting <command>"
// line, as the script writes before each agent), and writes its pid file.
// The process outlives this command; `down` and `stop` find it by its pid
// file and its command line, which names the cluster's directory.
func (s *settings) startDetached(c, bin string, args, env []string) error {
	pidPath, logPath := s.layout.PidFile(c), s.layout.LogFile(c)
	if err := os.Remove(pidPath); err != nil && !os.IsNotExist(err) {
		return err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "==== %s: starting %s %s\n", time.Now().Format("2006-01-02T15:04:05-0700"), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c, err)
	}
	pid := cmd.Process.Pid
	if err := pidfile.Write(pidPath, pid); err != nil {
		return err
	}
	// An exit at once (a bad flag, a port in use) is reported here; later
	// ones by wait.
	time.Sleep(100 * time.Millisecond)
	if !pidfile.Alive(pid) {
		return fmt.Errorf("%s exited at once; tail of %s:\n%s", c, logPath, ovsdaemon.Tail(logPath, 20))
	}
	return cmd.Process.Release()
}
