// Package ovstest starts throwaway Open vSwitch instances for integration
// tests. Each instance has its own ovsdb-server, its own ovs-vswitchd running
// inside a fresh network namespace, and its own run directory, so several can
// run side by side on one host without touching the host's OVS (if any) or
// its interfaces.
//
// Bridges must use datapath_type=netdev: the kernel datapath needs the
// openvswitch module, which test machines may not have.
//
// It is meant to be imported from _test.go files only.
package ovstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns "OVS is not installed"
// from a skip into a failure, so that CI cannot silently pass without running
// the integration tests.
const RequireEnv = "NODEROUTE_REQUIRE_INTEGRATION"

const (
	// readyTimeout bounds how long a daemon may take to answer on its
	// control socket. A netdev vswitchd on a loaded 2-core machine takes
	// well under a second; the margin is for CI under load.
	readyTimeout = 20 * time.Second
	// stopTimeout bounds the graceful stop before SIGKILL.
	stopTimeout = 10 * time.Second
	// cmdTimeout is passed to ovs-vsctl/ovs-ofctl so that a wedged daemon
	// fails a test instead of hanging it until the go test timeout.
	cmdTimeout = "--timeout=20"
	// maxRunDirLen keeps <rundir>/<bridge>.snoop under the 108-byte limit
	// of unix socket paths (sun_path), with room for a 15-byte bridge name
	// (IFNAMSIZ-1) and the suffix.
	maxRunDirLen = 80
)

// schemaPaths are where distributions put the vswitchd schema.
var schemaPaths = []string{
	"/usr/share/openvswitch/vswitch.ovsschema",
	"/usr/local/share/openvswitch/vswitch.ovsschema",
}

// Instance is a running OVS instance: ovsdb-server on the host, and
// ovs-vswitchd inside NetNS, sharing RunDir for their sockets, logs, pidfiles
// and database.
type Instance struct {
	// RunDir holds conf.db, db.sock, the daemons' control sockets, pidfiles
	// and logs, and the bridges' <bridge>.mgmt OpenFlow sockets.
	RunDir string
	// NetNS is the name of the network namespace (as in `ip netns`) that
	// ovs-vswitchd runs in, and so where the bridges' internal ports
	// appear as kernel interfaces.
	NetNS string

	t    testing.TB
	bins map[string]string

	mu       sync.Mutex
	dbProc   *daemon
	vsdProc  *daemon
	nsExists bool
}

// daemon is a child process we started and must reap: the daemons are not
// run with --detach because nothing on these machines reaps orphans (PID 1 is
// not an init), so detached daemons linger as zombies.
type daemon struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stderr  *bytes.Buffer
}

// Start starts an instance and registers its cleanup with t. It skips the
// test under -short (unit tests only), when not root, and when OVS is not
// installed unless RequireEnv=1.
func Start(t testing.TB) *Instance {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (uses network namespaces and OVS)")
	}
	bins, err := lookupBinaries()
	if err != nil {
		msg := fmt.Sprintf("integration test needs Open vSwitch (apt-get install openvswitch-switch): %v", err)
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	runDir := t.TempDir()
	if len(runDir) > maxRunDirLen {
		runDir, err = os.MkdirTemp("/tmp", "nrt-ovs-")
		if err != nil {
			t.Fatalf("creating OVS run dir: %v", err)
		}
		// Registered before the instance's cleanup, so it runs after
		// the daemons are stopped (cleanups run last-in first-out).
		t.Cleanup(func() { os.RemoveAll(runDir) })
	}

	inst := &Instance{
		RunDir: runDir,
		NetNS:  "nrt-" + randomHex(4),
		t:      t,
		bins:   bins,
	}
	// Registered before anything is started, so a failure halfway
	// through Start still tears down whatever did start.
	t.Cleanup(inst.cleanup)

	if err := inst.start(); err != nil {
		t.Fatalf("starting OVS instance in %s: %v", runDir, err)
	}
	return inst
}

func (i *Instance) start() error {
	if _, err := i.run(i.bins["ip"], "netns", "add", i.NetNS); err != nil {
		return fmt.Errorf("creating netns %s: %w", i.NetNS, err)
	}
	i.mu.Lock()
	i.nsExists = true
	i.mu.Unlock()
	if _, err := i.Exec("ip", "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("bringing lo up in netns %s: %w", i.NetNS, err)
	}

	schema, err := findSchema()
	if err != nil {
		return err
	}
	db := filepath.Join(i.RunDir, "conf.db")
	if _, err := i.run(i.bins["ovsdb-tool"], "create", db, schema); err != nil {
		return fmt.Errorf("creating database: %w", err)
	}
	if err := i.startOvsdb(); err != nil {
		return err
	}
	if _, err := i.run(i.bins["ovs-vsctl"], "--db=unix:"+i.DBSock(), cmdTimeout, "--no-wait", "init"); err != nil {
		return fmt.Errorf("initializing database: %w", err)
	}
	return i.startVswitchd()
}

func (i *Instance) startOvsdb() error {
	d, err := i.startDaemon("ovsdb-server", i.bins["ovsdb-server"],
		filepath.Join(i.RunDir, "conf.db"),
		"--remote=punix:"+i.DBSock(),
		"--pidfile="+filepath.Join(i.RunDir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(i.RunDir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(i.RunDir, "ovsdb-server.log"),
	)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.dbProc = d
	i.mu.Unlock()
	return i.waitReady(d, "ovsdb-server.ctl", "ovsdb-server.log")
}

// StartVswitchd starts ovs-vswitchd inside the netns and waits until it
// answers on its control socket. Use after StopVswitchd to simulate an OVS
// restart; it fails the test if vswitchd is already running.
func (i *Instance) StartVswitchd() {
	i.t.Helper()
	if err := i.startVswitchd(); err != nil {
		i.t.Fatalf("starting ovs-vswitchd: %v", err)
	}
}

func (i *Instance) startVswitchd() error {
	i.mu.Lock()
	running := i.vsdProc != nil
	i.mu.Unlock()
	if running {
		return errors.New("ovs-vswitchd is already running")
	}
	// `ip netns exec` setns()es and then execs the command in the same
	// process, so the process we wait on is vswitchd itself.
	d, err := i.startDaemon("ovs-vswitchd", i.bins["ip"], "netns", "exec", i.NetNS,
		i.bins["ovs-vswitchd"], "unix:"+i.DBSock(),
		"--pidfile="+filepath.Join(i.RunDir, "ovs-vswitchd.pid"),
		"--unixctl="+filepath.Join(i.RunDir, "ovs-vswitchd.ctl"),
		"--log-file="+filepath.Join(i.RunDir, "ovs-vswitchd.log"),
	)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.vsdProc = d
	i.mu.Unlock()
	if err := i.waitReady(d, "ovs-vswitchd.ctl", "ovs-vswitchd.log"); err != nil {
		return err
	}
	return i.waitConfigured(d)
}

// waitConfigured waits until vswitchd has applied the database, i.e. the
// bridges in it exist with their mgmt sockets. Its control socket answers
// before that (it is opened before the first reconfiguration), so after a
// restart a test could otherwise race it and find no bridge. It uses
// ovs-vsctl's own handshake: bump next_cfg, wait until vswitchd reports it
// in cur_cfg, which it does only after a complete reconfiguration.
func (i *Instance) waitConfigured(d *daemon) error {
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
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-d.done:
			return fmt.Errorf("%s exited during startup (%v); log tail:\n%s",
				d.name, d.waitErr, tail(filepath.Join(i.RunDir, "ovs-vswitchd.log"), 20))
		default:
		}
		out, err := i.Vsctl("--no-wait", "get", "Open_vSwitch", ".", "cur_cfg")
		if err == nil {
			if cur, perr := strconv.ParseInt(out, 10, 64); perr == nil && cur >= target {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ovs-vswitchd did not apply the database within %s (cur_cfg %q, want %d, last error %v); log tail:\n%s",
				readyTimeout, out, target, err, tail(filepath.Join(i.RunDir, "ovs-vswitchd.log"), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StopVswitchd stops ovs-vswitchd (SIGTERM, as a service stop does) and waits
// for it to exit. The database and its contents survive; the bridges'
// kernel interfaces go away with the daemon, as in a real OVS restart.
func (i *Instance) StopVswitchd() {
	i.t.Helper()
	d := i.takeDaemon(&i.vsdProc, "StopVswitchd: ovs-vswitchd")
	if err := d.stop(); err != nil {
		i.t.Fatalf("stopping ovs-vswitchd: %v", err)
	}
	// A stale pidfile would make the next vswitchd refuse to start only
	// if the pid were reused by a live process; remove it anyway so that
	// the restart starts from the same state as the first start.
	os.Remove(filepath.Join(i.RunDir, "ovs-vswitchd.pid"))
}

// takeDaemon takes the daemon *slot holds out of the instance (the caller
// stops or kills it) and fails the test if there is none; what names the
// caller and the daemon in that failure.
func (i *Instance) takeDaemon(slot **daemon, what string) *daemon {
	i.t.Helper()
	i.mu.Lock()
	d := *slot
	*slot = nil
	i.mu.Unlock()
	if d == nil {
		i.t.Fatal(what + " is not running")
	}
	return d
}

// NetNSPath is the path of the netns, for setns(2) or netns.GetFromPath.
func (i *Instance) NetNSPath() string {
	return filepath.Join("/var/run/netns", i.NetNS)
}

// DBSock is the path of ovsdb-server's unix socket (without "unix:").
func (i *Instance) DBSock() string {
	return filepath.Join(i.RunDir, "db.sock")
}

// MgmtSock is the path of a bridge's OpenFlow management socket (without
// "unix:"); vswitchd creates it as <OVS_RUNDIR>/<bridge>.mgmt.
func (i *Instance) MgmtSock(bridge string) string {
	return filepath.Join(i.RunDir, bridge+".mgmt")
}

// Vsctl runs ovs-vsctl against this instance's database. Without --no-wait
// in args it waits for vswitchd to apply the change, as ovs-vsctl does
// by default. The output is trimmed of surrounding white space.
func (i *Instance) Vsctl(args ...string) (string, error) {
	full := append([]string{"--db=unix:" + i.DBSock(), cmdTimeout}, args...)
	return i.run(i.bins["ovs-vsctl"], full...)
}

// Ofctl runs ovs-ofctl with OVS_RUNDIR set to this instance's run dir, so a
// bare bridge name as the target (e.g. "dump-flows", "br-int") reaches
// <RunDir>/<bridge>.mgmt; "unix:"+MgmtSock(bridge) works as well.
func (i *Instance) Ofctl(args ...string) (string, error) {
	full := append([]string{cmdTimeout}, args...)
	return i.run(i.bins["ovs-ofctl"], full...)
}

// Exec runs a command inside the instance's netns, with OVS_RUNDIR set as
// for Ofctl.
func (i *Instance) Exec(name string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", i.NetNS, name}, args...)
	return i.run(i.bins["ip"], full...)
}

// env points the OVS tools and daemons at the run dir, so that nothing falls
// back to the system's /var/run/openvswitch.
func (i *Instance) env() []string {
	return append(os.Environ(),
		"OVS_RUNDIR="+i.RunDir,
		"OVS_DBDIR="+i.RunDir,
		"OVS_LOGDIR="+i.RunDir,
		"OVS_SYSCONFDIR="+i.RunDir,
	)
}

// run runs a short command and returns its trimmed stdout; the error carries
// the command line and its stderr.
func (i *Instance) run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = i.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("%s %s: %w: %s",
			filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (i *Instance) startDaemon(name, bin string, args ...string) (*daemon, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = i.env()
	// Its own process group, so a ^C meant for go test does not hit the
	// daemons before the cleanup can stop them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Bounds Wait if something the daemon spawned keeps its output pipe
	// open after it exited.
	cmd.WaitDelay = time.Second
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{}), stderr: &bytes.Buffer{}}
	cmd.Stdout = d.stderr
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// waitReady polls the daemon's control socket until it answers, failing
// early if the daemon exits.
func (i *Instance) waitReady(d *daemon, ctl, log string) error {
	ctlPath := filepath.Join(i.RunDir, ctl)
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		select {
		case <-d.done:
			return fmt.Errorf("%s exited during startup (%v); output: %s; log tail:\n%s",
				d.name, d.waitErr, strings.TrimSpace(d.stderr.String()), tail(filepath.Join(i.RunDir, log), 20))
		default:
		}
		if _, lastErr = i.run(i.bins["ovs-appctl"], "--timeout=2", "-t", ctlPath, "version"); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %v); log tail:\n%s",
				d.name, readyTimeout, lastErr, tail(filepath.Join(i.RunDir, log), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, waits, and falls back to SIGKILL.
func (d *daemon) stop() error {
	select {
	case <-d.done:
		return nil
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling %s: %w", d.name, err)
	}
	select {
	case <-d.done:
		return nil
	case <-time.After(stopTimeout):
	}
	d.cmd.Process.Kill()
	select {
	case <-d.done:
		return fmt.Errorf("%s ignored SIGTERM for %s, killed", d.name, stopTimeout)
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s did not exit after SIGKILL", d.name)
	}
}

// cleanup stops vswitchd before ovsdb-server (so vswitchd does not spin
// reconnecting) and deletes the netns. It reports problems with Logf
// rather than failing: a test that already failed should show its own
// error, and leftovers here do not affect other instances.
func (i *Instance) cleanup() {
	i.mu.Lock()
	vsd, db, ns := i.vsdProc, i.dbProc, i.nsExists
	i.vsdProc, i.dbProc, i.nsExists = nil, nil, false
	i.mu.Unlock()
	if i.t.Failed() {
		for _, log := range []string{"ovs-vswitchd.log", "ovsdb-server.log"} {
			i.t.Logf("ovstest: tail of %s:\n%s", log, tail(filepath.Join(i.RunDir, log), 30))
		}
	}
	for _, d := range []*daemon{vsd, db} {
		if d == nil {
			continue
		}
		if err := d.stop(); err != nil {
			i.t.Logf("ovstest cleanup: %v", err)
		}
	}
	if ns {
		if _, err := i.run(i.bins["ip"], "netns", "delete", i.NetNS); err != nil {
			i.t.Logf("ovstest cleanup: %v", err)
		}
	}
}

// lookupBinaries finds the tools in PATH, then in the sbin directories that
// a non-login root shell may lack in PATH.
func lookupBinaries() (map[string]string, error) {
	names := []string{"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"}
	bins := make(map[string]string, len(names))
	var missing []string
	for _, n := range names {
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
	if _, err := findSchema(); err != nil {
		return nil, err
	}
	return bins, nil
}

func findSchema() (string, error) {
	for _, p := range schemaPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("vswitch.ovsschema not found in %s", strings.Join(schemaPaths, ", "))
}

// tail returns the last n lines of a file, or a note saying why it can't.
func tail(path string, n int) string {
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

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on Linux (Go ≥1.24
	// documents it never fails); the name only needs to be unique.
	rand.Read(b)
	return hex.EncodeToString(b)
}
