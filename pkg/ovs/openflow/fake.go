package openflow

import (
	"net"
	"sort"
	"sync"

	"github.com/noderoute/noderoute/internal/faults"
)

// Fake is an in-memory Client for unit tests. It records the flows a real
// bridge would hold, per remote Node, and can be told to fail:
// Inject(op, err) makes the calls of op ("Initialize", "InstallFlows",
// which InstallNodeFlows and UninstallNodeFlows use, "DeleteStaleFlows",
// or faults.Any for all three) fail with err, without effect.
type Fake struct {
	faults.Set
	mu sync.Mutex
	// Round is the round of the last Initialize.
	Round uint16
	// StaleDeleted counts DeleteStaleFlows calls.
	StaleDeleted int
	nodes        map[string][]string
}

var _ Client = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{nodes: map[string][]string{}}
}

func (f *Fake) Initialize(round uint16) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("Initialize"); err != nil {
		return err
	}
	f.Round = round
	return nil
}

func (f *Fake) InstallNodeFlows(nodeName string, gateways []net.IP) error {
	return f.InstallFlows(map[string][]net.IP{nodeName: gateways})
}

func (f *Fake) InstallFlows(nodes map[string][]net.IP) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("InstallFlows"); err != nil {
		return err
	}
	for nodeName, gateways := range nodes {
		var gws []string
		for _, gw := range gateways {
			// Both families, as the real client: an ARP
			// responder for IPv4, an NDP responder for IPv6.
			if gw.To16() != nil {
				gws = append(gws, gw.String())
			}
		}
		sort.Strings(gws)
		if len(gws) == 0 {
			delete(f.nodes, nodeName)
		} else {
			f.nodes[nodeName] = gws
		}
	}
	return nil
}

func (f *Fake) UninstallNodeFlows(nodeName string) error {
	return f.InstallNodeFlows(nodeName, nil)
}

func (f *Fake) DeleteStaleFlows() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("DeleteStaleFlows"); err != nil {
		return err
	}
	f.StaleDeleted++
	return nil
}

func (f *Fake) Disconnect() {}

// NodeFlows returns, per remote Node, the gateway IPs answered (IPv4 by ARP,
// IPv6 by NDP), sorted as strings.
func (f *Fake) NodeFlows() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]string, len(f.nodes))
	for n, gws := range f.nodes {
		out[n] = append([]string(nil), gws...)
	}
	return out
}
