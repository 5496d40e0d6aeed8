// Package ovsdaemon runs one dedicated Open vSwitch instance: an
// ovsdb-server and an ovs-vswitchd sharing a run directory of their own
// (database, sockets, pidfiles, logs), so that several instances run side by
// side on one host without touching the host's OVS, if any.
//
// It holds what the test harness (pkg/ovs/ovstest) and the local cluster's
// tool (hack/tools/localcluster) share: the file names in the run
// directory, the daemons' command lines, the readiness handshakes. Who
// starts and reaps the processes is up to the caller: ovstest keeps them as
// children, the local cluster detaches them (StartDetached).
//
// Bridges must use datapath_type=netdev: the kernel datapath needs the
// openvswitch module, which test machines may not have.
package ovsdaemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The daemons' names, as in their binaries, pidfiles, control sockets and
// logs (<RunDir>/<name>.pid, .ctl, .log).
const (
	Ovsdb    = "ovsdb-server"
	Vswitchd = "ovs-vswitchd"
)

const (
	// ReadyTimeout bounds how long a daemon may take to answer on its
	// control socket, and vswitchd to apply the database. A netdev
	// vswitchd on a loaded 2-core machine takes well under a second; the
	// margin is for CI under load.
	ReadyTimeout = 20 * time.Second
	// cmdTimeout is passed to ovs-vsctl/ovs-ofctl so that a wedged daemon
	// fails its caller instead of hanging it.
	cmdTimeout = "--timeout=20"
)

// schemaPaths are where distributions put the vswitchd schema.
var schemaPaths = []string{
	"/usr/share/openvswitch/vswitch.ovsschema",
	"/usr/local/share/openvswitch/vswitch.ovsschema",
}

// toolNames are the binaries an instance needs.
var toolNames = []string{"ip", "ovsdb-tool", Ovsdb, Vswitchd, "ovs-vsctl", "ovs-ofctl", "ovs-appctl"}

// Instance is the run directory of one OVS instance and the tools that act
// on it. It starts nothing by itself.
type Instance struct {
	// RunDir holds conf.db, db.sock, the daemons' control sockets,
	// pidfiles and logs, and the bridges' <bridge>.mgmt OpenFlow sockets.
	RunDir string

	bins map[string]string
}

// New finds the OVS tools (failing if one is missing) for an instance
// living in runDir. Nothing is created.
func New(runDir string) (*Instance, error) {
	bins, err := lookupBinaries()
	if err != nil {
		return nil, err
	}
	return &Instance{RunDir: runDir, bins: bins}, nil
}

// DB is the path of the database file.
func (i *Instance) DB() string { return filepath.Join(i.RunDir, "conf.db") }

// DBSock is the path of ovsdb-server's unix socket (without "unix:").
func (i *Instance) DBSock() string { return filepath.Join(i.RunDir, "db.sock") }

// MgmtSock is the path of a bridge's OpenFlow management socket (without
// "unix:"); vswitchd creates it as <OVS_RUNDIR>/<bridge>.mgmt.
func (i *Instance) MgmtSock(bridge string) string {
	return filepath.Join(i.RunDir, bridge+".mgmt")
}

// Pidfile, Ctl and Log are the files of daemon (Ovsdb or Vswitchd).
func (i *Instance) Pidfile(daemon string) string { return filepath.Join(i.RunDir, daemon+".pid") }
func (i *Instance) Ctl(daemon string) string     { return filepath.Join(i.RunDir, daemon+".ctl") }
func (i *Instance) Log(daemon string) string     { return filepath.Join(i.RunDir, daemon+".log") }

// Bin is the path of one of the tools (ip, ovs-vsctl, ovs-vswitchd, ...).
func (i *Instance) Bin(name string) string { return i.bins[name] }

// Env points the OVS tools and daemons at the run dir, so that nothing falls
// back to the system's /var/run/openvswitch.
func (i *Instance) Env() []string {
	return append(os.Environ(),
		"OVS_RUNDIR="+i.RunDir,
		"OVS_DBDIR="+i.RunDir,
		"OVS_LOGDIR="+i.RunDir,
		"OVS_SYSCONFDIR="+i.RunDir,
	)
}

// OvsdbArgs is ovsdb-server's command line (without the binary).
func (i *Instance) OvsdbArgs() []string {
	return []string{
		i.DB(),
		"--remote=punix:" + i.DBSock(),
		"--pidfile=" + i.Pidfile(Ovsdb),
		"--unixctl=" + i.Ctl(Ovsdb),
		"--log-file=" + i.Log(Ovsdb),
	}
}

// VswitchdArgs is ovs-vswitchd's command line (without the binary).
func (i *Instance) VswitchdArgs() []string {
	return []string{
		"unix:" + i.DBSock(),
		"--pidfile=" + i.Pidfile(Vswitchd),
		"--unixctl=" + i.Ctl(Vswitchd),
		"--log-file=" + i.Log(Vswitchd),
	}
}

// CreateDB creates a fresh, empty database, replacing any there is (and
// its lock file, which a killed ovsdb-server leaves behind).
func (i *Instance) CreateDB() error {
	schema, err := FindSchema()
	if err != nil {
		return err
	}
	for _, f := range []string{i.DB(), filepath.Join(i.RunDir, ".conf.db.~lock~")} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing %s: %w", f, err)
		}
	}
	if _, err := i.Run("ovsdb-tool", "create", i.DB(), schema); err != nil {
		return fmt.Errorf("creating database: %w", err)
	}
	return nil
}

// Init runs `ovs-vsctl init`, as OVS's start script does on every start: a
// fresh database gets its Open_vSwitch row, an existing one is left as it
// is.
func (i *Instance) Init() error {
	if _, err := i.Vsctl("--no-wait", "init"); err != nil {
		return fmt.Errorf("initializing database: %w", err)
	}
	return nil
}

// Vsctl runs ovs-vsctl against this instance's database. Without --no-wait
// in args it waits for vswitchd to apply the change, as ovs-vsctl does
// by default. The output is trimmed of surrounding white space.
func (i *Instance) Vsctl(args ...string) (string, error) {
	return i.Run("ovs-vsctl", append([]string{"--db=unix:" + i.DBSock(), cmdTimeout}, args...)...)
}

// Ofctl runs ovs-ofctl with OVS_RUNDIR set to this instance's run dir, so a
// bare bridge name as the target (e.g. "dump-flows", "br-int") reaches
// <RunDir>/<bridge>.mgmt; "unix:"+MgmtSock(bridge) works as well.
func (i *Instance) Ofctl(args ...string) (string, error) {
	return i.Run("ovs-ofctl", append([]string{cmdTimeout}, args...)...)
}

// Run runs one of the tools (by name, as in Bin) as a short command with
// Env and returns its trimmed stdout; the error carries the command line
// and its stderr.
func (i *Instance) Run(tool string, args ...string) (string, error) {
	name := i.bins[tool]
	if name == "" {
		name = tool
	}
	cmd := exec.Command(name, args...)
	cmd.Env = i.Env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%s %s: %w: %s",
			filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// WaitReady polls daemon's control socket until it answers. exited reports
// why the daemon is known to be gone (nil while it may still come up), so
// that an early exit fails at once.
func (i *Instance) WaitReady(daemon string, exited func() error) error {
	deadline := time.Now().Add(ReadyTimeout)
	var lastErr error
	for {
		if err := exited(); err != nil {
			return fmt.Errorf("%s exited during startup (%v); log tail:\n%s", daemon, err, Tail(i.Log(daemon), 20))
		}
		if _, lastErr = i.Run("ovs-appctl", "--timeout=2", "-t", i.Ctl(daemon), "version"); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %v); log tail:\n%s",
				daemon, ReadyTimeout, lastErr, Tail(i.Log(daemon), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitConfigured waits until vswitchd has applied the database, i.e. the
// bridges in it exist with their mgmt sockets. Its control socket answers
// before that (it is opened before the first reconfiguration), so after a
// restart a caller could otherwise race it and find no bridge. It uses
// ovs-vsctl's own handshake: bump next_cfg, wait until vswitchd reports it
// in cur_cfg, which it does only after a complete reconfiguration. exited
// is as for WaitReady, for vswitchd.
func (i *Instance) WaitConfigured(exited func() error) error {
	out, err := i.Vsctl("--no-wait", "get", "Open_vSwitch", ".", "next_cfg")
	if err != nil {
		return fmt.Errorf("reading next_cfg: %w", err)
	}
	next, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return fmt.Errorf("parsing next_cfg %q: %w", out, err)
	}
	target := next + 1
	if _, err := i.Vsctl("--no-wait", "set", "Open_vSwitch", ".", fmt.Sprintf("next_cfg=%d", target)); err != nil {
		return fmt.Errorf("bumping next_cfg: %w", err)
	}
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if err := exited(); err != nil {
			return fmt.Errorf("%s exited during startup (%v); log tail:\n%s", Vswitchd, err, Tail(i.Log(Vswitchd), 20))
		}
		out, err := i.Vsctl("--no-wait", "get", "Open_vSwitch", ".", "cur_cfg")
		if err == nil {
			if cur, perr := strconv.ParseInt(out, 10, 64); perr == nil && cur >= target {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not apply the database within %s (cur_cfg %q, want %d, last error %v); log tail:\n%s",
				Vswitchd, ReadyTimeout, out, target, err, Tail(i.Log(Vswitchd), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookupBinaries finds the tools in PATH, then in the sbin directories that
// a non-login root shell may lack in PATH.
func lookupBinaries() (map[string]string, error) {
	bins := make(map[string]string, len(toolNames))
	var missing []string
	for _, n := range toolNames {
		p, err := exec.LookPath(n)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
				if st, serr := os.Stat(filepath.Join(dir, n)); serr == nil && !st.IsDir() {
					p, err = filepath.Join(dir, n), nil
					break
				}
			}
		}
		if err != nil {
			missing = append(missing, n)
			continue
		}
		bins[n] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("not found: %s", strings.Join(missing, ", "))
	}
	if _, err := FindSchema(); err != nil {
		return nil, err
	}
	return bins, nil
}

// FindSchema returns the path of the installed vswitchd schema.
func FindSchema() (string, error) {
	for _, p := range schemaPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("vswitch.ovsschema not found in %s", strings.Join(schemaPaths, ", "))
}

// Tail returns the last n lines of a file, or a note saying why it can't.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
