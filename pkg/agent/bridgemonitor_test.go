package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
)

// fakeGateway is a gatewayLink whose interface tests replace at will.
type fakeGateway struct {
	mu         sync.Mutex
	index      int
	configured bool
	configErr  error
	configures int
}

func (g *fakeGateway) Status() (int, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.index, g.configured, nil
}

func (g *fakeGateway) Configure(time.Duration) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.configures++
	if g.configErr != nil {
		return 0, g.configErr
	}
	g.configured = true
	return g.index, nil
}

// recreate simulates OVS re-creating the interface: new index, no
// addresses.
func (g *fakeGateway) recreate(index int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.index, g.configured = index, false
}

var monitorBridge = ovsconfig.BridgeConfig{Name: "br-int", DatapathType: ovsconfig.DatapathNetdev, GatewayPort: "antrea-gw0", FlowRound: 3}

func newTestMonitor(gw *fakeGateway) (*BridgeMonitor, *ovsconfig.Fake) {
	f := ovsconfig.NewFake()
	return &BridgeMonitor{ovsdb: f, bridge: monitorBridge, gateway: gw, interval: 10 * time.Millisecond, maxDelay: 40 * time.Millisecond}, f
}

func TestBridgeMonitorCheck(t *testing.T) {
	ctx := context.Background()
	gw := &fakeGateway{index: 7, configured: true}
	m, f := newTestMonitor(gw)

	// As at start: the agent configured the interface, nothing to do.
	if restored, err := m.check(ctx); err != nil || restored {
		t.Fatalf("first check: restored %v, %v; want false, nil", restored, err)
	}
	if got := f.Bridges["br-int"]; got != monitorBridge {
		t.Errorf("EnsureBridge got %+v, want %+v (flow round included)", got, monitorBridge)
	}
	if restored, err := m.check(ctx); err != nil || restored || gw.configures != 0 {
		t.Fatalf("steady check: restored %v, %v, %d configures; want nothing done", restored, err, gw.configures)
	}

	// Re-created by OVS: configured again, reported once.
	gw.recreate(9)
	if restored, err := m.check(ctx); err != nil || !restored || gw.configures != 1 {
		t.Fatalf("after re-creation: restored %v, %v, %d configures; want true, nil, 1", restored, err, gw.configures)
	}
	if restored, err := m.check(ctx); err != nil || restored {
		t.Fatalf("check after restore: restored %v, %v; want false, nil", restored, err)
	}

	// Replaced and configured by someone else: the routes still went
	// with the old interface.
	gw.mu.Lock()
	gw.index = 11
	gw.mu.Unlock()
	if restored, err := m.check(ctx); err != nil || !restored || gw.configures != 1 {
		t.Fatalf("after a replacement: restored %v, %v, %d configures; want true, nil, 1", restored, err, gw.configures)
	}

	// Failures are errors, and the old index is kept until a repair
	// succeeds.
	gw.recreate(13)
	gw.configErr = errors.New("no interface")
	if _, err := m.check(ctx); err == nil {
		t.Fatal("check with a failing Configure succeeded")
	}
	gw.configErr = nil
	if restored, err := m.check(ctx); err != nil || !restored {
		t.Fatalf("check after Configure works again: restored %v, %v; want true, nil", restored, err)
	}

	boom := errors.New("ovsdb down")
	f.Inject("EnsureBridge", boom)
	if _, err := m.check(ctx); !errors.Is(err, boom) {
		t.Fatalf("check with failing EnsureBridge: got %v, want it wrapped", err)
	}
}

// Run keeps checking through failures and calls the hook once per restore.
func TestBridgeMonitorRun(t *testing.T) {
	gw := &fakeGateway{index: 7, configured: true}
	m, f := newTestMonitor(gw)
	restores := make(chan struct{}, 10)
	m.OnGatewayRestored = func() { restores <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitCalls := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			f.Lock()
			calls := f.EnsureBridgeCalls
			f.Unlock()
			if calls >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("EnsureBridge called %d times, want %d", calls, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls(3)
	f.Lock()
	f.Inject("EnsureBridge", errors.New("ovsdb down"))
	f.Unlock()
	gw.recreate(8)
	f.Lock()
	calls := f.EnsureBridgeCalls
	f.Unlock()
	waitCalls(calls + 3)
	select {
	case <-restores:
		t.Fatal("hook called while EnsureBridge fails")
	default:
	}
	f.Lock()
	f.Inject("EnsureBridge", nil)
	f.Unlock()
	select {
	case <-restores:
	case <-time.After(5 * time.Second):
		t.Fatal("hook not called after the gateway was restored")
	}
	f.Lock()
	calls = f.EnsureBridgeCalls
	f.Unlock()
	waitCalls(calls + 3)
	if n := len(restores); n != 0 {
		t.Errorf("hook called %d more times for one restore", n)
	}
}

func TestRetryDelay(t *testing.T) {
	for failures, want := range []time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 5: 5 * time.Second} {
		if failures == 0 {
			continue
		}
		if got := retryDelay(time.Second, 5*time.Second, failures); got != want {
			t.Errorf("retryDelay after %d failures: got %s, want %s", failures, got, want)
		}
	}
	if got := retryDelay(time.Second, 5*time.Second, 1000); got != 5*time.Second {
		t.Errorf("retryDelay after 1000 failures: got %s, want the cap", got)
	}
}
