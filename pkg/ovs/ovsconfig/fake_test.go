package ovsconfig

import (
	"context"
	"errors"
	"testing"
)

func TestFake(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	if _, err := f.NextFlowRound(ctx, testBridge); err == nil {
		t.Error("NextFlowRound before EnsureBridge succeeded")
	}
	if err := f.EnsureBridge(ctx, testCfg); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if f.Bridges[testBridge] != testCfg {
		t.Errorf("recorded bridge: got %+v, want %+v", f.Bridges[testBridge], testCfg)
	}
	for want := uint16(1); want <= 2; want++ {
		if got, err := f.NextFlowRound(ctx, testBridge); err != nil || got != want {
			t.Fatalf("NextFlowRound: got %d, %v; want %d", got, err, want)
		}
	}
	f.Rounds[testBridge] = 0xffff
	if got, _ := f.NextFlowRound(ctx, testBridge); got != 1 {
		t.Errorf("NextFlowRound after 65535: got %d, want 1", got)
	}

	boom := errors.New("boom")
	f.Inject("EnsureBridge", boom)
	if err := f.EnsureBridge(ctx, testCfg); !errors.Is(err, boom) {
		t.Errorf("EnsureBridge with injected error: got %v", err)
	}
	if f.EnsureBridgeCalls != 2 {
		t.Errorf("EnsureBridgeCalls: got %d, want 2", f.EnsureBridgeCalls)
	}
	f.Close()
	if !f.Closed {
		t.Error("Close not recorded")
	}
}
