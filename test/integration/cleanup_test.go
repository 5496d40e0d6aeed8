//go:build linux

package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/pkg/agent/cleanup"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/test/framework/nodesim"
)

// runCleanup runs `noderoute-agent cleanup` as the command does, on the
// host's OVS and in its network namespace, and returns its output.
func runCleanup(t *testing.T, n *nodesim.Host, dryRun bool, apiSocket string) (string, error) {
	t.Helper()
	cfg := config.Default()
	cfg.OVSRunDir = n.OVS.RunDir
	cfg.APISocket = apiSocket
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cleanup.Run(ctx, cleanup.Options{Config: &cfg, DryRun: dryRun, Out: &out, Namespace: n.Namespace})
	t.Logf("cleanup (dry run %v):\n%s", dryRun, out.String())
	return out.String(), err
}

// foreignState adds a route someone else owns (protocol static).
func foreignState(t *testing.T, n *nodesim.Host) {
	t.Helper()
	// A blackhole route needs no device (this kernel has no dummy
	// links).
	must(t)(n.OVS.Exec("ip", "route", "add", "blackhole", "10.98.0.0/24", "proto", "static"))
}

// foreignFlows adds flows in the agent's table 20 (round 0, as ovs-ofctl
// adds them) and in table 30 (with a cookie of the agent's layout: the
// table alone makes it foreign).
func foreignFlows(t *testing.T, n *nodesim.Host) {
	t.Helper()
	must(t)(n.OVS.Ofctl("-O", "OpenFlow13", "add-flow", nodesim.Bridge, "table=20,priority=100,arp,arp_tpa=10.99.0.9,actions=drop"))
	must(t)(n.OVS.Ofctl("-O", "OpenFlow13", "add-flow", nodesim.Bridge, "table=30,cookie=0x1020000000000,priority=10,ip,actions=drop"))
}

func assertNoOwnRoutes(t *testing.T, n *nodesim.Host) {
	t.Helper()
	for _, fam := range []string{"-4", "-6"} {
		if out := strings.TrimSpace(must(t)(n.OVS.Exec("ip", fam, "route", "show", "proto", "94"))); out != "" {
			t.Errorf("ip %s route show proto 94 after cleanup:\n%s", fam, out)
		}
	}
	if out := must(t)(n.OVS.Exec("ip", "route", "show", "10.98.0.0/24")); !strings.Contains(out, "blackhole 10.98.0.0/24 proto static") {
		t.Errorf("foreign route gone or changed after cleanup: %q", out)
	}
}

func assertNothingLeft(t *testing.T, n *nodesim.Host) {
	t.Helper()
	out, err := runCleanup(t, n, false, "")
	if err != nil {
		t.Fatalf("second cleanup: %v", err)
	}
	if !strings.Contains(out, "nothing to remove") {
		t.Errorf("second cleanup did not find the node clean:\n%s", out)
	}
}

// TestCleanupOwnBridge: the agent created the bridge; cleanup removes it
// with every flow, and every route and address of the agent's, and leaves
// the foreign route. The dry run before changes nothing.
func TestCleanupOwnBridge(t *testing.T) {
	n := nodesim.NewHost(t)
	a := n.StartAgent(t, fake.NewSimpleClientset(nodesim.DualStackClusterNodes()...), time.Minute)
	a.Stop()
	foreignState(t, n)
	foreignFlows(t, n)
	flowsBefore := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats"))

	out, err := runCleanup(t, n, true, "")
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{
		"would remove route 10.222.0.0/24 via 10.222.0.1 proto 94",
		"would remove route fd00:10:222:2::/64 via fd00:10:222:2::1 proto 94",
		"would remove flow cookie=0x",
		"would remove bridge br-int (created by noderoute-agent, with its port antrea-gw0)",
		"would remove 4 routes, 13 flows, 1 bridge",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
	if strings.Contains(out, "arp_tpa=10.99.0.9") {
		t.Errorf("dry run lists the foreign flow")
	}
	if after := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats")); after != flowsBefore {
		t.Fatalf("dry run changed the flows:\n%s\nwas:\n%s", after, flowsBefore)
	}
	if out := must(t)(n.OVS.Exec("ip", "route", "show", "proto", "94")); strings.TrimSpace(out) == "" {
		t.Fatal("dry run removed the routes")
	}

	if _, err := runCleanup(t, n, false, ""); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	assertNoOwnRoutes(t, n)
	if br := must(t)(n.OVS.Vsctl("list-br")); strings.TrimSpace(br) != "" {
		t.Errorf("bridges after cleanup: %q, want none", br)
	}
	waitLinkGone(t, n, nodesim.GatewayInterface)
	assertNothingLeft(t, n)
}

// TestCleanupForeignBridge: the operator made the bridge (and, on a second
// pass, the gateway port too); cleanup removes only the agent's flows,
// routes, gateway addresses, the port the agent added and its external_ids
// keys. The foreign flows, port and bridge stay.
func TestCleanupForeignBridge(t *testing.T) {
	for _, foreignPort := range []bool{false, true} {
		name := "agent's gateway port"
		if foreignPort {
			name = "operator's gateway port"
		}
		t.Run(name, func(t *testing.T) {
			n := nodesim.NewHost(t)
			must(t)(n.OVS.Vsctl("add-br", nodesim.Bridge, "--", "set", "bridge", nodesim.Bridge, "datapath_type=netdev",
				"external_ids:operator=yes"))
			must(t)(n.OVS.Vsctl("add-port", nodesim.Bridge, "uplink0", "--", "set", "interface", "uplink0", "type=internal"))
			if foreignPort {
				must(t)(n.OVS.Vsctl("add-port", nodesim.Bridge, nodesim.GatewayInterface, "--", "set", "interface", nodesim.GatewayInterface, "type=internal"))
			}
			a := n.StartAgent(t, fake.NewSimpleClientset(nodesim.DualStackClusterNodes()...), time.Minute)
			a.Stop()
			foreignState(t, n)
			foreignFlows(t, n)

			if _, err := runCleanup(t, n, false, ""); err != nil {
				t.Fatalf("cleanup: %v", err)
			}
			assertNoOwnRoutes(t, n)
			flows := must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "--no-stats"))
			want := []string{
				"table=20, priority=100,arp,arp_tpa=10.99.0.9 actions=drop",
				"cookie=0x1020000000000, table=30, priority=10,ip actions=drop",
			}
			if got := strings.Join(lines(flows), "\n"); got != strings.Join(want, "\n") {
				t.Errorf("flows after cleanup:\n%s\nwant only the foreign ones:\n%s", got, strings.Join(want, "\n"))
			}
			ports := lines(must(t)(n.OVS.Vsctl("list-ports", nodesim.Bridge)))
			wantPorts := []string{"uplink0"}
			if foreignPort {
				wantPorts = []string{nodesim.GatewayInterface, "uplink0"}
			}
			if strings.Join(ports, " ") != strings.Join(wantPorts, " ") {
				t.Errorf("ports of %s after cleanup: %v, want %v", nodesim.Bridge, ports, wantPorts)
			}
			ids := must(t)(n.OVS.Vsctl("get", "bridge", nodesim.Bridge, "external_ids"))
			if ids != `{operator=yes}` {
				t.Errorf("bridge external_ids after cleanup: %s, want only the operator's", ids)
			}
			if foreignPort {
				if ids := must(t)(n.OVS.Vsctl("get", "port", nodesim.GatewayInterface, "external_ids")); ids != "{}" {
					t.Errorf("gateway port external_ids after cleanup: %s, want none", ids)
				}
				addrs := must(t)(n.OVS.Exec("ip", "addr", "show", "dev", nodesim.GatewayInterface))
				for _, a := range []string{"10.222.1.1/24", "fd00:10:222:1::1/64"} {
					if strings.Contains(addrs, a) {
						t.Errorf("gateway address %s still on %s:\n%s", a, nodesim.GatewayInterface, addrs)
					}
				}
			}
			assertNothingLeft(t, n)
		})
	}
}

// TestCleanupRefusedWhileAgentRuns: with the agent's local API answering,
// cleanup changes nothing and says why.
func TestCleanupRefusedWhileAgentRuns(t *testing.T) {
	n := nodesim.NewHost(t)
	n.StartAgent(t, fake.NewSimpleClientset(nodesim.ClusterNodes()...), time.Minute)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = runCleanup(t, n, false, sock)
	if !errors.Is(err, cleanup.ErrAgentRunning) {
		t.Fatalf("cleanup while the agent runs: %v, want ErrAgentRunning", err)
	}
	t.Logf("refused: %v", err)
	// A dry run still lists, after a note.
	out, err := runCleanup(t, n, true, sock)
	if err != nil || !strings.Contains(out, "note: noderoute-agent is running on this node") || !strings.Contains(out, "would remove 2 routes") {
		t.Errorf("dry run while the agent runs: %v\n%s", err, out)
	}
	if out := must(t)(n.OVS.Exec("ip", "route", "show", "proto", "94")); len(lines(out)) != 2 {
		t.Errorf("routes after refused cleanup:\n%s", out)
	}
	assertSeedTable20(t, n)
}

// waitLinkGone waits for ovs-vswitchd to remove the kernel side of a
// deleted port.
func waitLinkGone(t *testing.T, n *nodesim.Host, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := n.Handle.LinkByName(name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("interface %s still exists 10s after its port was deleted", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
