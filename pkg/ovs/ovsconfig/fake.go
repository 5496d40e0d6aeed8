package ovsconfig

import (
	"context"
	"fmt"
	"sync"

	"github.com/noderoute/noderoute/internal/faults"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

// Fake is an in-memory Interface for unit tests. It behaves like Client on
// the happy path (NextFlowRound needs the bridge to exist, rounds wrap as in
// openflow.NextRound) and can be told to fail: Inject(op, err) makes the
// calls of op ("EnsureBridge", "NextFlowRound", or faults.Any for both)
// return err and change nothing. Its exported fields may be
// set before use and inspected after; while other goroutines may call it,
// access them between Lock and Unlock.
type Fake struct {
	faults.Set
	mu sync.Mutex

	// Bridges are the bridges ensured so far, by name.
	Bridges map[string]BridgeConfig
	// Rounds are the last rounds stored, by bridge name.
	Rounds map[string]uint16
	// GatewayAddresses are the addresses recorded, by gateway port name.
	GatewayAddresses map[string][]string
	// EnsureBridgeCalls counts EnsureBridge calls, failed ones included.
	EnsureBridgeCalls int
	// Closed is set by Close.
	Closed bool
}

var _ Interface = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{Bridges: map[string]BridgeConfig{}, Rounds: map[string]uint16{}}
}

// Lock guards the exported fields while the Fake is in use.
func (f *Fake) Lock() { f.mu.Lock() }

// Unlock releases Lock.
func (f *Fake) Unlock() { f.mu.Unlock() }

// EnsureBridge implements Interface.
func (f *Fake) EnsureBridge(_ context.Context, cfg BridgeConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.EnsureBridgeCalls++
	if err := f.Injected("EnsureBridge"); err != nil {
		return err
	}
	if cfg.Name == "" || cfg.GatewayPort == "" {
		return fmt.Errorf("invalid bridge config %+v: bridge and gateway port names are required", cfg)
	}
	if f.Bridges == nil {
		f.Bridges = map[string]BridgeConfig{}
	}
	f.Bridges[cfg.Name] = cfg
	if _, ok := f.Rounds[cfg.Name]; !ok && cfg.FlowRound != 0 {
		if f.Rounds == nil {
			f.Rounds = map[string]uint16{}
		}
		f.Rounds[cfg.Name] = cfg.FlowRound
	}
	return nil
}

// NextFlowRound implements Interface.
func (f *Fake) NextFlowRound(_ context.Context, bridge string) (uint16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("NextFlowRound"); err != nil {
		return 0, err
	}
	if _, ok := f.Bridges[bridge]; !ok {
		return 0, fmt.Errorf("reading flow round: bridge %s not found", bridge)
	}
	if f.Rounds == nil {
		f.Rounds = map[string]uint16{}
	}
	next := openflow.NextRound(f.Rounds[bridge])
	f.Rounds[bridge] = next
	return next, nil
}

// RecordGatewayAddresses implements Interface.
func (f *Fake) RecordGatewayAddresses(_ context.Context, gatewayPort string, addrs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.GatewayAddresses == nil {
		f.GatewayAddresses = map[string][]string{}
	}
	f.GatewayAddresses[gatewayPort] = append([]string(nil), addrs...)
	return nil
}

// Close implements Interface.
func (f *Fake) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Closed = true
}
