package ovsconfig

import (
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/noderoute/noderoute/pkg/ovs/ovstest"
)

// ovsdb-server killed with SIGKILL and restarted on the same database: the
// client reconnects by itself, a call made while the server is down waits
// for it, and later calls work, without a new Client.
func TestReconnectAfterOvsdbKilled(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)
	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}

	inst.KillOvsdb()
	done := make(chan error, 1)
	go func() { done <- c.EnsureBridge(ctx, testCfg) }()
	select {
	case err := <-done:
		t.Fatalf("EnsureBridge returned while ovsdb-server was down: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	restart := time.Now()
	inst.StartOvsdb()
	if err := <-done; err != nil {
		t.Fatalf("EnsureBridge issued while ovsdb-server was down: %v", err)
	}
	t.Logf("EnsureBridge issued while ovsdb-server was down returned %s after the restart began",
		time.Since(restart).Round(time.Millisecond))

	// The connection is usable for writes: a port deleted by hand is put
	// back.
	vsctl(t, inst, "del-port", testBridge, testGW)
	if err := c.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge after reconnect: %v", err)
	}
	if got := vsctl(t, inst, "list-ports", testBridge); got != testGW {
		t.Errorf("ports after reconnect: got %q, want %q", got, testGW)
	}
	waitForLink(t, inst, testGW)
}

// A fresh database (conf.db lost): the client reconnects and EnsureBridge
// creates everything again, the flow round included.
func TestEnsureBridgeOnFreshDatabase(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)
	cfg := testCfg
	if err := c.EnsureBridge(ctx, cfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	round, err := c.NextFlowRound(ctx, testBridge)
	if err != nil {
		t.Fatalf("NextFlowRound: %v", err)
	}

	inst.KillVswitchd()
	inst.KillOvsdb()
	inst.WipeDatabase()
	inst.StartOvsdb()
	inst.StartVswitchd()

	cfg.FlowRound = round
	if err := c.EnsureBridge(ctx, cfg); err != nil {
		t.Fatalf("EnsureBridge on the fresh database: %v", err)
	}
	if got := vsctl(t, inst, "list-ports", testBridge); got != testGW {
		t.Errorf("ports: got %q, want %q", got, testGW)
	}
	waitForLink(t, inst, testGW)
	// The next agent continues after the running one's round.
	if got, err := c.NextFlowRound(ctx, testBridge); err != nil || got != round+1 {
		t.Fatalf("NextFlowRound on the re-created bridge: got %d, %v; want %d", got, err, round+1)
	}
}

// FlowRound is written only where no round is stored, and other
// external_ids are kept.
func TestEnsureBridgeFlowRound(t *testing.T) {
	inst := ovstest.Start(t)
	c := newTestClient(t, inst)
	ctx := testCtx(t)
	cfg := testCfg
	cfg.FlowRound = 7

	if err := c.EnsureBridge(ctx, cfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	round := func() string { return vsctl(t, inst, "get", "bridge", testBridge, "external_ids:"+RoundExternalID) }
	if got := round(); got != `"7"` {
		t.Fatalf("round on a created bridge: got %s, want \"7\"", got)
	}

	vsctl(t, inst, "set", "bridge", testBridge, "external_ids:"+RoundExternalID+"=9", "external_ids:other=x")
	if err := c.EnsureBridge(ctx, cfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if got := round(); got != `"9"` {
		t.Errorf("stored round changed: got %s, want \"9\"", got)
	}

	vsctl(t, inst, "remove", "bridge", testBridge, "external_ids", RoundExternalID)
	if err := c.EnsureBridge(ctx, cfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if got := round(); got != `"7"` {
		t.Errorf("round after it was removed: got %s, want \"7\"", got)
	}
	if got := vsctl(t, inst, "get", "bridge", testBridge, "external_ids:other"); got != "x" {
		t.Errorf("other external_id: got %q, want x", got)
	}
	if ops, err := c.bridgeOps(ctx, cfg); err != nil || len(ops) != 0 {
		t.Errorf("EnsureBridge would still write %d operations (%v): %+v", len(ops), err, ops)
	}
}

// The reconnect schedule never gives up (libovsdb panics when it does) and
// never waits long between attempts, however long the outage.
func TestReconnectBackoff(t *testing.T) {
	b := reconnectBackoff().(*backoff.ExponentialBackOff)
	clock := &fakeClock{now: time.Now()}
	b.Clock = clock
	b.Reset()
	for i := 0; i < 1000; i++ {
		d := b.NextBackOff()
		if d == backoff.Stop {
			t.Fatalf("attempt %d, %d minutes into the outage: backoff gave up", i, i)
		}
		if d > maxReconnectDelay*3/2 {
			t.Fatalf("attempt %d: delay %s above %s plus jitter", i, d, maxReconnectDelay)
		}
		clock.now = clock.now.Add(time.Minute)
	}
}

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
