package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/ovs/ovsconfig"
	"github.com/noderoute/noderoute/pkg/route"
)

const (
	// bridgeCheckInterval is how often the monitor checks the bridge. A
	// check that finds everything in place costs three small OVSDB selects
	// (EnsureBridge writes nothing then) and two netlink requests, so once
	// a second is cheap, and a deleted bridge is back within about a
	// second; the OpenFlow client's reconnect (at most 3 s apart) then
	// replays the flows.
	bridgeCheckInterval = time.Second
	// maxBridgeCheckDelay caps the wait between failed checks (the
	// interval, doubling per failure).
	maxBridgeCheckDelay = 5 * time.Second
	// bridgeCheckTimeout bounds one check. While ovsdb-server is down,
	// libovsdb holds our transactions until it has reconnected (within
	// about 3 s of the server's return, see ovsconfig), so a check waits
	// this long for the server before it counts as failed.
	bridgeCheckTimeout = 10 * time.Second
	// gatewayRepairTimeout bounds the wait for OVS to create the kernel
	// interface of a re-created gateway port. Shorter than at start-up: a
	// check that gives up is retried anyway.
	gatewayRepairTimeout = 5 * time.Second
)

// gatewayLink is the kernel side of the gateway port, as the monitor sees
// it: a *route.GatewayLink, or a fake in tests.
type gatewayLink interface {
	// Status returns the interface's index (0 when it does not exist)
	// and whether it is up with every gateway address.
	Status() (index int, configured bool, err error)
	// Configure waits up to timeout for the interface, sets it up, adds
	// the gateway addresses and returns its index.
	Configure(timeout time.Duration) (index int, err error)
}

// BridgeMonitor puts the bridge, its gateway port and the gateway's
// addresses back when they vanish while the agent runs: `ovs-vsctl del-br`
// or `del-port`, or ovsdb-server restarted on a fresh database. It polls
// (see bridgeCheckInterval) rather than following OVSDB update
// notifications: a poll also covers the kernel side (a re-created port is a
// new interface without addresses), and it needs no cache that a reconnect
// would have to rebuild.
//
// It does not touch flows: the OpenFlow client reconnects to the re-created
// bridge and replays them by itself.
type BridgeMonitor struct {
	ovsdb    ovsconfig.Interface
	bridge   ovsconfig.BridgeConfig
	gateway  gatewayLink
	interval time.Duration
	maxDelay time.Duration

	// OnGatewayRestored, if set, is called after the monitor found the
	// gateway interface replaced (a new ifindex) or stripped of its
	// addresses, and configured it again. The kernel drops the routes
	// through a deleted interface, so this is where a route reconcile
	// belongs. It runs on the monitor's goroutine, which waits for it.
	OnGatewayRestored func()

	// index is the gateway's ifindex as last seen configured, 0 before
	// the first check.
	index int
}

// NewBridgeMonitor returns a monitor that keeps bridge, with its flow round
// in bridge.FlowRound, and the gateway interface with addresses gateways in
// place, the gateway interface being the one in the network namespace ns.
// Call Run to start it.
func NewBridgeMonitor(ovsdb ovsconfig.Interface, bridge ovsconfig.BridgeConfig, ns *route.Namespace, gateways []*net.IPNet) *BridgeMonitor {
	return &BridgeMonitor{
		ovsdb:    ovsdb,
		bridge:   bridge,
		gateway:  route.NewGatewayLink(ns, bridge.GatewayPort, gateways),
		interval: bridgeCheckInterval,
		maxDelay: maxBridgeCheckDelay,
	}
}

// Run checks at once, then every interval, until ctx ends. Failed checks
// (ovsdb-server down, vswitchd not creating the interface) are logged and
// retried after a delay that doubles up to maxDelay.
func (m *BridgeMonitor) Run(ctx context.Context) {
	klog.InfoS("Watching OVS bridge and gateway interface", "bridge", m.bridge.Name,
		"interface", m.bridge.GatewayPort, "interval", m.interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	var failingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		restored, err := m.check(ctx)
		if ctx.Err() != nil {
			return
		}
		delay := m.interval
		if err != nil {
			if failures == 0 {
				failingSince = time.Now()
			}
			failures++
			delay = retryDelay(m.interval, m.maxDelay, failures)
			klog.ErrorS(err, "OVS bridge check failed, retrying", "bridge", m.bridge.Name,
				"failures", failures, "retryIn", delay)
		} else {
			if failures > 0 {
				klog.InfoS("OVS bridge check succeeds again", "bridge", m.bridge.Name,
					"failures", failures, "failingFor", time.Since(failingSince).Round(time.Millisecond))
				failures = 0
			}
			if restored && m.OnGatewayRestored != nil {
				m.OnGatewayRestored()
			}
		}
		timer.Reset(delay)
	}
}

// check runs EnsureBridge (which writes only what is missing) and then
// repairs the gateway interface if needed. restored reports that the
// interface was replaced or re-configured since the last check.
func (m *BridgeMonitor) check(ctx context.Context) (restored bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, bridgeCheckTimeout)
	defer cancel()
	if err := m.ovsdb.EnsureBridge(ctx, m.bridge); err != nil {
		return false, fmt.Errorf("ensure bridge %s: %w", m.bridge.Name, err)
	}
	index, configured, err := m.gateway.Status()
	if err != nil {
		return false, err
	}
	if configured && (m.index == 0 || index == m.index) {
		m.index = index
		return false, nil
	}
	// A configured interface with a new index was configured by someone
	// else, but the routes went with the old one all the same.
	if !configured {
		if index, err = m.gateway.Configure(gatewayRepairTimeout); err != nil {
			return false, fmt.Errorf("restore gateway interface %s: %w", m.bridge.GatewayPort, err)
		}
	}
	klog.InfoS("Gateway interface restored", "interface", m.bridge.GatewayPort,
		"previousIndex", m.index, "index", index)
	m.index = index
	return true, nil
}

// retryDelay is interval doubled per failure after the first, capped at
// maxDelay.
func retryDelay(interval, maxDelay time.Duration, failures int) time.Duration {
	d := interval
	for i := 1; i < failures && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}
