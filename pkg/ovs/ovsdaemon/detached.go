package ovsdaemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/noderoute/noderoute/pkg/pidfile"
)

// maxSocketPath is the size of sun_path less its terminating NUL: unix
// socket paths longer than this cannot be bound or dialled.
const maxSocketPath = 107

// longestSocketName is the room left in a socket path for the file name in
// the run dir (br-int.mgmt, ovs-vswitchd.ctl and their separator).
const longestSocketName = 20

// StartDetached starts ovsdb-server and ovs-vswitchd with --detach, in the
// caller's network namespace, on a fresh database, and waits until
// vswitchd has applied it. The daemons outlive the caller; their pidfiles
// (Pidfile) track them, StopDetached stops them. Each daemon's own output
// (before its log file opens) is appended to <RunDir>/<daemon>.out.
func (i *Instance) StartDetached() error {
	if len(i.RunDir)+longestSocketName > maxSocketPath {
		return fmt.Errorf("OVS run dir %s is too long for unix sockets; move the repository to a shorter path", i.RunDir)
	}
	if err := os.MkdirAll(i.RunDir, 0o755); err != nil {
		return err
	}
	if err := i.CreateDB(); err != nil {
		return err
	}
	// --detach returns once the daemon is initialised.
	if err := i.runDetached(Ovsdb, i.OvsdbArgs()); err != nil {
		return err
	}
	if err := i.Init(); err != nil {
		return err
	}
	if err := i.runDetached(Vswitchd, i.VswitchdArgs()); err != nil {
		return err
	}
	return i.WaitConfigured(func() error {
		if _, alive := pidfile.AliveIn(i.Pidfile(Vswitchd)); !alive {
			return fmt.Errorf("no live pid in %s", i.Pidfile(Vswitchd))
		}
		return nil
	})
}

func (i *Instance) runDetached(daemon string, args []string) error {
	outPath := filepath.Join(i.RunDir, daemon+".out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(i.bins[daemon], append(args, "--detach", "--no-chdir")...)
	cmd.Env = i.Env()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s did not start: %w: %s\n%s", daemon, err, Tail(outPath, 20), Tail(i.Log(daemon), 20))
	}
	return nil
}

// StopDetached stops the daemons StartDetached started, vswitchd first (so
// that it does not spin reconnecting): SIGTERM, SIGKILL after grace. A
// pidfile whose process is gone, or is no longer that daemon, is skipped.
func (i *Instance) StopDetached(grace time.Duration) error {
	for _, daemon := range []string{Vswitchd, Ovsdb} {
		pid, alive := pidfile.AliveIn(i.Pidfile(daemon))
		if !alive || !isDaemon(pid, daemon) {
			continue
		}
		if _, err := pidfile.Stop(pid, grace); err != nil {
			return fmt.Errorf("stopping %s: %w", daemon, err)
		}
	}
	return nil
}

// isDaemon reports whether pid runs the binary daemon (its comm, which
// holds the first 15 bytes of the name: enough for both daemons).
func isDaemon(pid int, daemon string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && string(b) == daemon+"\n"
}
