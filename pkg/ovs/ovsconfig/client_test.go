package ovsconfig

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
)

const (
	testBridge = "br-int"
	testGW     = "antrea-gw0"
)

var testCfg = BridgeConfig{Name: testBridge, DatapathType: DatapathNetdev, GatewayPort: testGW}

func newTestClient(t *testing.T, inst *ovstest.Instance) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, inst.DBSock())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func vsctl(t *testing.T, inst *ovstest.Instance, args ...string) string {
	t.Helper()
	out, err := inst.Vsctl(args...)
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// waitForLink polls until the kernel interface exists in the instance's
// netns: vswitchd creates it asynchronously after the transaction.
func waitForLink(t *testing.T, inst *ovstest.Instance, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := inst.Exec("ip", "link", "show", name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("interface %s did not appear in netns %s: %v", name, inst.NetNS, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEnsureBridgeCreates(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)

	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}

	got := vsctl(t, inst, "get", "bridge", testBridge, "protocols", "datapath_type", "fail_mode")
	want := "[OpenFlow10, OpenFlow13]\nnetdev\nsecure"
	if got != want {
		t.Errorf("bridge columns:\n got %q\nwant %q", got, want)
	}
	if got := vsctl(t, inst, "list-ports", testBridge); got != testGW {
		t.Errorf("ports of %s: got %q, want %q", testBridge, got, testGW)
	}
	if got := vsctl(t, inst, "get", "interface", testGW, "type"); got != "internal" {
		t.Errorf("type of %s: got %q, want internal", testGW, got)
	}
	waitForLink(t, inst, testGW)

	// The bridge must answer OpenFlow 1.3 on its mgmt socket, which is
	// what the agent's flow client will use.
	if _, err := inst.Ofctl("-O", "OpenFlow13", "dump-flows", "unix:"+inst.MgmtSock(testBridge)); err != nil {
		t.Errorf("dump-flows over OpenFlow 1.3: %v", err)
	}
}

func TestEnsureBridgeIdempotent(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)

	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	uuids := func() string {
		return vsctl(t, inst, "get", "bridge", testBridge, "_uuid") + " " +
			vsctl(t, inst, "get", "port", testGW, "_uuid") + " " +
			vsctl(t, inst, "get", "interface", testGW, "_uuid")
	}
	before := uuids()

	ops, err := c.bridgeOps(ctx, testCfg)
	if err != nil {
		t.Fatalf("bridgeOps: %v", err)
	}
	if len(ops) != 0 {
		t.Errorf("second EnsureBridge would write %d operations, want none: %+v", len(ops), ops)
	}
	// Also through the public method and a fresh connection.
	c2 := newTestClient(t, inst)
	if err := c2.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	if after := uuids(); after != before {
		t.Errorf("rows replaced: before %s, after %s", before, after)
	}
	if got := vsctl(t, inst, "list-br"); got != testBridge {
		t.Errorf("bridges: got %q, want only %s", got, testBridge)
	}
}

func TestEnsureBridgeCorrectsExisting(t *testing.T) {
	inst := ovstest.Start(t)
	// Wrong protocols, standalone, no gateway port, and an unrelated
	// external_id that must survive.
	vsctl(t, inst, "add-br", testBridge, "--", "set", "bridge", testBridge,
		"datapath_type=netdev", "protocols=OpenFlow10", "fail_mode=standalone", "external_ids:owner=someone")
	c := newTestClient(t, inst)
	ctx := testCtx(t)

	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	got := vsctl(t, inst, "get", "bridge", testBridge, "protocols", "datapath_type", "fail_mode", "external_ids:owner")
	want := "[OpenFlow10, OpenFlow13]\nnetdev\nsecure\nsomeone"
	if got != want {
		t.Errorf("bridge columns:\n got %q\nwant %q", got, want)
	}
	// list-ports leaves out the bridge's local port that add-br made.
	if got, want := vsctl(t, inst, "list-ports", testBridge), testGW; got != want {
		t.Errorf("ports: got %q, want %q", got, want)
	}
	waitForLink(t, inst, testGW)

	ops, err := c.bridgeOps(ctx, testCfg)
	if err != nil {
		t.Fatalf("bridgeOps: %v", err)
	}
	if len(ops) != 0 {
		t.Errorf("after correction, EnsureBridge would still write %d operations: %+v", len(ops), ops)
	}
}

func TestEnsureBridgeFixesGatewayType(t *testing.T) {
	inst := ovstest.Start(t)
	vsctl(t, inst, "add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev",
		"--", "add-port", testBridge, testGW, "--", "set", "interface", testGW, "type=dummy")
	c := newTestClient(t, inst)
	if err := c.EnsureBridge(testCtx(t), testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if got := vsctl(t, inst, "get", "interface", testGW, "type"); got != "internal" {
		t.Errorf("type of %s: got %q, want internal", testGW, got)
	}
	waitForLink(t, inst, testGW)
}

func TestEnsureBridgePortOnOtherBridge(t *testing.T) {
	inst := ovstest.Start(t)
	vsctl(t, inst, "add-br", "br-other", "--", "set", "bridge", "br-other", "datapath_type=netdev",
		"--", "add-port", "br-other", testGW, "--", "set", "interface", testGW, "type=internal")
	vsctl(t, inst, "add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev")
	c := newTestClient(t, inst)
	err := c.EnsureBridge(testCtx(t), testCfg)
	if err == nil || !strings.Contains(err.Error(), "not on bridge "+testBridge) {
		t.Fatalf("EnsureBridge with %s on another bridge: got %v, want a 'not on bridge' error", testGW, err)
	}
}

func TestNextFlowRound(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)
	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}

	for want := uint16(1); want <= 3; want++ {
		got, err := c.NextFlowRound(ctx, testBridge)
		if err != nil {
			t.Fatalf("NextFlowRound: %v", err)
		}
		if got != want {
			t.Fatalf("NextFlowRound: got %d, want %d", got, want)
		}
	}
	if got := vsctl(t, inst, "get", "bridge", testBridge, "external_ids:"+RoundExternalID); got != `"3"` {
		t.Errorf("stored round: got %s, want \"3\"", got)
	}

	// A new connection (a restarted agent) continues from the stored one.
	c.Close()
	c2 := newTestClient(t, inst)
	if got, err := c2.NextFlowRound(ctx, testBridge); err != nil || got != 4 {
		t.Fatalf("NextFlowRound on a new connection: got %d, %v; want 4", got, err)
	}

	// Changes by others between calls are seen at once (no stale cache).
	vsctl(t, inst, "set", "bridge", testBridge, "external_ids:"+RoundExternalID+"=65535", "external_ids:other=x")
	if got, err := c2.NextFlowRound(ctx, testBridge); err != nil || got != 1 {
		t.Fatalf("NextFlowRound after 65535: got %d, %v; want 1 (wrap, never 0)", got, err)
	}
	if got := vsctl(t, inst, "get", "bridge", testBridge, "external_ids:other"); got != "x" {
		t.Errorf("other external_id: got %q, want x (must be preserved)", got)
	}

	vsctl(t, inst, "set", "bridge", testBridge, "external_ids:"+RoundExternalID+"=garbage")
	if got, err := c2.NextFlowRound(ctx, testBridge); err != nil || got != 1 {
		t.Fatalf("NextFlowRound after garbage: got %d, %v; want 1", got, err)
	}
}

// A bridge without external_ids at all (made by hand) starts at 1.
func TestNextFlowRoundFreshBridge(t *testing.T) {
	inst := ovstest.Start(t)
	vsctl(t, inst, "add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev")
	c := newTestClient(t, inst)
	if got, err := c.NextFlowRound(testCtx(t), testBridge); err != nil || got != 1 {
		t.Fatalf("NextFlowRound: got %d, %v; want 1", got, err)
	}
}

func TestNextFlowRoundNoBridge(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	_, err := c.NextFlowRound(testCtx(t), "br-missing")
	if err == nil || !strings.Contains(err.Error(), "br-missing not found") {
		t.Fatalf("got %v, want a 'not found' error", err)
	}
}

// The wait guard: the write fails, and nothing is written, when the
// external_ids changed after they were read.
func TestRoundOpsConflict(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)
	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	br, err := c.getBridge(ctx, testBridge)
	if err != nil || br == nil {
		t.Fatalf("getBridge: %v, %v", br, err)
	}
	ops, err := c.roundOps(br, 1)
	if err != nil {
		t.Fatalf("roundOps: %v", err)
	}
	vsctl(t, inst, "set", "bridge", testBridge, "external_ids:"+RoundExternalID+"=7")
	if _, err := c.transact(ctx, ops); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("transact after concurrent change: got %v, want a timed out wait", err)
	}
	if got := vsctl(t, inst, "get", "bridge", testBridge, "external_ids:"+RoundExternalID); got != `"7"` {
		t.Errorf("stored round: got %s, want the concurrent writer's \"7\"", got)
	}
	// And NextFlowRound itself starts over and succeeds.
	if got, err := c.NextFlowRound(ctx, testBridge); err != nil || got != 8 {
		t.Fatalf("NextFlowRound: got %d, %v; want 8", got, err)
	}
}

func TestNewUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := New(ctx, sock)
	if err == nil {
		t.Fatal("New on a missing socket succeeded")
	}
	if !strings.Contains(err.Error(), sock) {
		t.Errorf("error %q does not name the socket %s", err, sock)
	}
}
