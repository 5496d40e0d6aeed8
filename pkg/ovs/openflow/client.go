package openflow

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/contiv/libOpenflow/openflow13"
	"github.com/sirupsen/logrus"
	"github.com/wenyingd/ofnet/ofctrl"
	"k8s.io/klog/v2"
)

// DefaultConnectTimeout is how long Initialize waits for the first
// connection to the bridge.
const DefaultConnectTimeout = 30 * time.Second

// OFClient is the Client that talks OpenFlow 1.3 to a real bridge through its
// management socket (<OVS run dir>/<bridge>.mgmt). It keeps the flows it
// installed in memory, sends only differences, and replays everything after
// a reconnect (ovs-vswitchd restarted and lost its flows).
type OFClient struct {
	bridge     string
	sock       string
	virtualMAC net.HardwareAddr
	// ConnectTimeout bounds Initialize's wait for the first connection.
	ConnectTimeout time.Duration

	// swMu guards sw alone, so that ofnet's callbacks never wait for a
	// bundle in flight.
	swMu sync.Mutex
	sw   *ofctrl.OFSwitch

	// mu serializes bundles and guards the state below.
	mu          sync.Mutex
	pipe        pipeline
	initialized bool
	// nodeFlows holds, per remote Node, the gateway IPs whose responder
	// flows (ARP for IPv4, NDP for IPv6) are installed, keyed by the IP's
	// string form.
	nodeFlows map[string]map[string]net.IP

	startOnce    sync.Once
	cancel       context.CancelFunc
	done         chan struct{}
	disconnected chan struct{}

	// flowStats collects the replies to our flow stats requests
	// (flowstats.go); it has a lock of its own.
	flowStats flowStatsCollector
	// flowCounts collects the replies to our aggregate flow stats
	// requests (flowcount.go).
	flowCounts flowCounts
}

var _ Client = (*OFClient)(nil)

// NewOFClient returns a client for bridge, reached at the management socket
// sock, answering ARP and NDP with virtualMAC. It does not connect until
// Initialize.
func NewOFClient(bridge, sock string, virtualMAC net.HardwareAddr) *OFClient {
	// ofnet and libOpenflow log every connection step through logrus at
	// info level; keep their warnings and errors only.
	logrus.SetLevel(logrus.WarnLevel)
	return &OFClient{
		bridge:         bridge,
		sock:           sock,
		virtualMAC:     virtualMAC,
		ConnectTimeout: DefaultConnectTimeout,
		nodeFlows:      map[string]map[string]net.IP{},
		done:           make(chan struct{}),
		disconnected:   make(chan struct{}, 1),
	}
}

// Initialize connects (once) and installs the base flows of round.
func (c *OFClient) Initialize(round uint16) error {
	c.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel = cancel
		go c.run(ctx)
	})
	if err := c.waitConnected(c.ConnectTimeout); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pipe = pipeline{round: round, virtualMAC: c.virtualMAC}
	if err := c.sendBundle(c.pipe.baseFlows()); err != nil {
		return fmt.Errorf("install base flows on bridge %s: %w", c.bridge, err)
	}
	c.initialized = true
	klog.InfoS("Installed base flows", "bridge", c.bridge, "round", round)
	return nil
}

// InstallNodeFlows implements Client.
func (c *OFClient) InstallNodeFlows(nodeName string, gateways []net.IP) error {
	return c.InstallFlows(map[string][]net.IP{nodeName: gateways})
}

// maxBundleMessages bounds the flow messages of one bundle. Atomicity across
// Nodes is not needed (each Node's flows are independent, and one Node's
// changes always go in one bundle), while the size bounds what is built and
// buffered at once: make bench found bundles of 2000 as fast as one bundle
// of 5000 and lighter on the agent's memory (docs/performance.md, What
// changed).
const maxBundleMessages = 2000

// InstallFlows implements Client: the differences of every Node listed go
// in as few bundles as maxBundleMessages allows (one per 2000 flow
// messages), each Node's changes within one bundle.
func (c *OFClient) InstallFlows(nodes map[string][]net.IP) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		mods    []*openflow13.FlowMod
		pending = map[string]map[string]net.IP{}
	)
	flush := func() error {
		if len(mods) == 0 {
			return nil
		}
		if err := c.sendBundle(mods); err != nil {
			return fmt.Errorf("install responder flows for %s: %w", describeNodes(pending), err)
		}
		for name, want := range pending {
			if len(want) == 0 {
				delete(c.nodeFlows, name)
			} else {
				c.nodeFlows[name] = want
			}
		}
		mods, pending = nil, map[string]map[string]net.IP{}
		return nil
	}
	for _, name := range sortedKeys(nodes) {
		want := gatewaySet(nodes[name])
		nodeMods, err := c.diffNodeFlows(name, want)
		if err != nil {
			return err
		}
		if len(nodeMods) == 0 {
			continue
		}
		if len(mods)+len(nodeMods) > maxBundleMessages {
			if err := flush(); err != nil {
				return err
			}
		}
		mods = append(mods, nodeMods...)
		pending[name] = want
	}
	return flush()
}

// gatewaySet keys gateway IPs by their string form, IPv4 in 4-byte form.
func gatewaySet(gateways []net.IP) map[string]net.IP {
	want := map[string]net.IP{}
	for _, gw := range gateways {
		if ip := familyForm(gw); ip != nil {
			want[ip.String()] = ip
		}
	}
	return want
}

// diffNodeFlows returns the flow messages that turn the Node's installed
// responders into want. Callers hold c.mu.
func (c *OFClient) diffNodeFlows(nodeName string, want map[string]net.IP) ([]*openflow13.FlowMod, error) {
	have := c.nodeFlows[nodeName]
	var mods []*openflow13.FlowMod
	for _, key := range sortedKeys(want) {
		if _, ok := have[key]; ok {
			continue
		}
		fms, err := c.pipe.gatewayFlows(want[key])
		if err != nil {
			return nil, fmt.Errorf("build responder flow for node %s: %w", nodeName, err)
		}
		mods = append(mods, fms...)
	}
	for _, key := range sortedKeys(have) {
		if _, ok := want[key]; !ok {
			mods = append(mods, deleteGatewayFlows(have[key])...)
		}
	}
	return mods, nil
}

// describeNodes names the Nodes of a bundle for an error message: all of
// them when few, else the count.
func describeNodes(nodes map[string]map[string]net.IP) string {
	if len(nodes) > 3 {
		return fmt.Sprintf("%d nodes", len(nodes))
	}
	return "node " + strings.Join(sortedKeys(nodes), ", ")
}

// UninstallNodeFlows implements Client.
func (c *OFClient) UninstallNodeFlows(nodeName string) error {
	return c.InstallNodeFlows(nodeName, nil)
}

// DeleteStaleFlows implements Client: one bundle of cookie-masked deletes in
// the agent's tables that select every round but the current one (and but
// 0, the cookie of flows added by hand).
func (c *OFClient) DeleteStaleFlows() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mods []*openflow13.FlowMod
	for _, table := range Tables() {
		for _, p := range staleRoundPatterns(c.pipe.round) {
			value, mask := p.cookie()
			mods = append(mods, deleteByCookie(table, value, mask))
		}
	}
	if err := c.sendBundle(mods); err != nil {
		return fmt.Errorf("delete flows of earlier rounds on bridge %s: %w", c.bridge, err)
	}
	return nil
}

// Disconnect implements Client.
func (c *OFClient) Disconnect() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
}

// run keeps the connection up until ctx ends, replaying the flows after
// every reconnect.
func (c *OFClient) run(ctx context.Context) {
	defer close(c.done)
	ctrlID := uint16(rand.Uint32())
	delay := minReconnectDelay
	app := &switchEvents{client: c}
	for {
		err := dialSwitch(ctx, c.sock, app, ctrlID)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			logDialFailure(c.sock, err, delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = backoff(delay)
			continue
		}
		delay = minReconnectDelay
		klog.InfoS("Connected to OpenFlow switch", "bridge", c.bridge, "socket", c.sock)
		c.replay()

		select {
		case <-c.disconnected:
			klog.InfoS("Lost OpenFlow connection, reconnecting", "bridge", c.bridge)
		case <-ctx.Done():
			if sw := c.currentSwitch(); sw != nil {
				sw.Disconnect()
			}
			return
		}
	}
}

// replay re-installs every flow after a reconnect. A freshly started
// ovs-vswitchd has an empty table; one that merely dropped the connection
// keeps its flows, and re-adding identical flows changes nothing.
func (c *OFClient) replay() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.initialized {
		return // Initialize installs the base flows itself.
	}
	mods := c.pipe.baseFlows()
	for _, node := range sortedKeys(c.nodeFlows) {
		for _, key := range sortedKeys(c.nodeFlows[node]) {
			fms, err := c.pipe.gatewayFlows(c.nodeFlows[node][key])
			if err != nil {
				klog.ErrorS(err, "Cannot rebuild flow for replay", "node", node)
				continue
			}
			mods = append(mods, fms...)
		}
	}
	start := time.Now()
	if err := c.sendBundles(mods); err != nil {
		klog.ErrorS(err, "Replaying flows after reconnect failed", "bridge", c.bridge)
		return
	}
	klog.InfoS("Replayed flows after reconnect", "bridge", c.bridge, "flows", len(mods), "duration", time.Since(start))
}

// sendBundles sends mods in bundles of at most maxBundleMessages, for
// callers that need no atomicity across all of them (a replay, a repair:
// they only add flows, so even one Node's flows may be split). Callers hold
// c.mu.
func (c *OFClient) sendBundles(mods []*openflow13.FlowMod) error {
	for len(mods) > 0 {
		n := min(len(mods), maxBundleMessages)
		if err := c.sendBundle(mods[:n]); err != nil {
			return err
		}
		mods = mods[n:]
	}
	return nil
}

// sendBundle sends mods as one atomic bundle. Callers hold c.mu.
func (c *OFClient) sendBundle(mods []*openflow13.FlowMod) error {
	sw := c.currentSwitch()
	if sw == nil {
		return fmt.Errorf("not connected to bridge %s at %s", c.bridge, c.sock)
	}
	tx := sw.NewTransaction(ofctrl.Atomic)
	if err := tx.Begin(); err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	for _, fm := range mods {
		if err := tx.AddFlow(fm); err != nil {
			return fmt.Errorf("add flow to bundle: %w", err)
		}
	}
	added, err := tx.Complete()
	if err != nil {
		return fmt.Errorf("close bundle: %w", err)
	}
	if added != len(mods) {
		if err := tx.Abort(); err != nil {
			klog.ErrorS(err, "Discarding a failed bundle failed", "bridge", c.bridge)
		}
		return fmt.Errorf("switch refused %d of %d flow messages in the bundle", len(mods)-added, len(mods))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit bundle: %w", err)
	}
	return nil
}

// Connected reports whether the OpenFlow connection to the bridge is up.
func (c *OFClient) Connected() bool { return c.currentSwitch() != nil }

func (c *OFClient) currentSwitch() *ofctrl.OFSwitch {
	c.swMu.Lock()
	defer c.swMu.Unlock()
	return c.sw
}

func (c *OFClient) waitConnected(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.currentSwitch() == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("no OpenFlow connection to bridge %s at %s after %s (is ovs-vswitchd running and the bridge created?)", c.bridge, c.sock, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// switchEvents receives ofnet's callbacks. They run on ofnet's goroutines,
// so they only record the switch and never block.
type switchEvents struct {
	client *OFClient
}

func (e *switchEvents) SwitchConnected(sw *ofctrl.OFSwitch) {
	e.client.swMu.Lock()
	e.client.sw = sw
	e.client.swMu.Unlock()
}

func (e *switchEvents) SwitchDisconnected(sw *ofctrl.OFSwitch) {
	e.client.swMu.Lock()
	if e.client.sw == sw {
		e.client.sw = nil
	}
	e.client.swMu.Unlock()
	select {
	case e.client.disconnected <- struct{}{}:
	default:
	}
}

func (e *switchEvents) PacketRcvd(*ofctrl.OFSwitch, *ofctrl.PacketIn) {}

func (e *switchEvents) MultipartReply(_ *ofctrl.OFSwitch, reply *openflow13.MultipartReply) {
	e.client.flowStats.deliver(reply)
	e.client.flowCounts.deliver(reply)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
