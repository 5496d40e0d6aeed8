// Package ovstest starts throwaway Open vSwitch instances for integration
// tests. Each instance has its own ovsdb-server, its own ovs-vswitchd running
// inside a fresh network namespace, and its own run directory, so several can
// run side by side on one host without touching the host's OVS (if any) or
// its interfaces.
//
// Bridges must use datapath_type=netdev: the kernel datapath needs the
// openvswitch module, which test machines may not have. The run directory's
// files, the daemons' command lines and their readiness handshakes come
// from pkg/ovs/ovsdaemon, which the local cluster shares; this package adds
// the test's life cycle (children reaped, stopped at cleanup, crashes).
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
)

const (
	// stopTimeout bounds the graceful stop before SIGKILL.
	stopTimeout = 10 * time.Second
	// maxRunDirLen keeps <rundir>/<bridge>.snoop under the 108-byte limit
	// of unix socket paths (sun_path), with room for a 15-byte bridge name
	// (IFNAMSIZ-1) and the suffix.
	maxRunDirLen = 80
)

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

	t   testing.TB
	ovs *ovsdaemon.Instance

	mu      sync.Mutex
	dbProc  *daemon
	vsdProc *daemon
	ns      *testsupport.NetNS
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
// installed unless testsupport.RequireIntegrationEnv=1.
func Start(t testing.TB) *Instance {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (uses network namespaces and OVS)")
	}
	runDir := t.TempDir()
	ovs, err := ovsdaemon.New(runDir)
	if err != nil {
		if testsupport.IntegrationRequired() {
			t.Fatalf("integration test needs Open vSwitch (apt-get install openvswitch-switch): %v", err)
		}
		t.Skipf("integration test needs Open vSwitch (apt-get install openvswitch-switch): %v", err)
	}

	if len(runDir) > maxRunDirLen {
		runDir, err = os.MkdirTemp("/tmp", "nrt-ovs-")
		if err != nil {
			t.Fatalf("creating OVS run dir: %v", err)
		}
		// Registered before the instance's cleanup, so it runs after
		// the daemons are stopped (cleanups run last-in first-out).
		t.Cleanup(func() { os.RemoveAll(runDir) })
		ovs.RunDir = runDir
	}

	inst := &Instance{
		RunDir: runDir,
		NetNS:  "nrt-" + randomHex(4),
		t:      t,
		ovs:    ovs,
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
	ns, err := testsupport.CreateNetNS(i.NetNS)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.ns = ns
	i.mu.Unlock()
	if _, err := i.Exec("ip", "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("bringing lo up in netns %s: %w", i.NetNS, err)
	}

	if err := i.ovs.CreateDB(); err != nil {
		return err
	}
	if err := i.startOvsdb(); err != nil {
		return err
	}
	if err := i.ovs.Init(); err != nil {
		return err
	}
	return i.startVswitchd()
}

func (i *Instance) startOvsdb() error {
	d, err := i.startDaemon(ovsdaemon.Ovsdb, i.ovs.Bin(ovsdaemon.Ovsdb), i.ovs.OvsdbArgs()...)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.dbProc = d
	i.mu.Unlock()
	return i.ovs.WaitReady(ovsdaemon.Ovsdb, d.exited)
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
	d, err := i.startDaemon(ovsdaemon.Vswitchd, i.ovs.Bin("ip"),
		append([]string{"netns", "exec", i.NetNS, i.ovs.Bin(ovsdaemon.Vswitchd)}, i.ovs.VswitchdArgs()...)...)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.vsdProc = d
	i.mu.Unlock()
	if err := i.ovs.WaitReady(ovsdaemon.Vswitchd, d.exited); err != nil {
		return err
	}
	return i.ovs.WaitConfigured(d.exited)
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
	os.Remove(i.ovs.Pidfile(ovsdaemon.Vswitchd))
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
func (i *Instance) DBSock() string { return i.ovs.DBSock() }

// MgmtSock is the path of a bridge's OpenFlow management socket (without
// "unix:"); vswitchd creates it as <OVS_RUNDIR>/<bridge>.mgmt.
func (i *Instance) MgmtSock(bridge string) string { return i.ovs.MgmtSock(bridge) }

// Vsctl runs ovs-vsctl against this instance's database. Without --no-wait
// in args it waits for vswitchd to apply the change, as ovs-vsctl does
// by default. The output is trimmed of surrounding white space.
func (i *Instance) Vsctl(args ...string) (string, error) { return i.ovs.Vsctl(args...) }

// Ofctl runs ovs-ofctl with OVS_RUNDIR set to this instance's run dir, so a
// bare bridge name as the target (e.g. "dump-flows", "br-int") reaches
// <RunDir>/<bridge>.mgmt; "unix:"+MgmtSock(bridge) works as well.
func (i *Instance) Ofctl(args ...string) (string, error) { return i.ovs.Ofctl(args...) }

// Exec runs a command inside the instance's netns, with OVS_RUNDIR set as
// for Ofctl.
func (i *Instance) Exec(name string, args ...string) (string, error) {
	return i.ovs.Run("ip", append([]string{"netns", "exec", i.NetNS, name}, args...)...)
}

func (i *Instance) startDaemon(name, bin string, args ...string) (*daemon, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = i.ovs.Env()
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

// exited is ovsdaemon's early-exit check: nil while the daemon runs.
func (d *daemon) exited() error {
	select {
	case <-d.done:
		return fmt.Errorf("%v; output: %s", d.waitErr, strings.TrimSpace(d.stderr.String()))
	default:
		return nil
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
	vsd, db, ns := i.vsdProc, i.dbProc, i.ns
	i.vsdProc, i.dbProc, i.ns = nil, nil, nil
	i.mu.Unlock()
	if i.t.Failed() {
		for _, log := range []string{"ovs-vswitchd.log", "ovsdb-server.log"} {
			i.t.Logf("ovstest: tail of %s:\n%s", log, ovsdaemon.Tail(filepath.Join(i.RunDir, log), 30))
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
	if ns != nil {
		if err := ns.Delete(); err != nil {
			i.t.Logf("ovstest cleanup: %v", err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error on Linux (Go ≥1.24
	// documents it never fails); the name only needs to be unique.
	rand.Read(b)
	return hex.EncodeToString(b)
}
