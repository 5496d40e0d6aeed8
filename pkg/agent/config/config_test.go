package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("noderoute-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Parse(fs, args)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	t.Setenv("NODE_NAME", "worker1")
	cfg, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{NodeName: "worker1", OVSBridge: "br-int", OVSRunDir: "/var/run/openvswitch", OVSDatapathType: "system",
		GatewayInterface: "antrea-gw0", VirtualMAC: "aa:bb:cc:dd:ee:ff", ResyncPeriod: Duration{time.Minute},
		FlowCheckPeriod: Duration{2 * time.Second}, APISocket: "/var/run/noderoute/agent.sock", MetricsBindAddress: "127.0.0.1:9475"}
	if *cfg != want {
		t.Errorf("defaults = %+v, want %+v", *cfg, want)
	}
	if cfg.DBSocket() != "/var/run/openvswitch/db.sock" || cfg.MgmtSocket() != "/var/run/openvswitch/br-int.mgmt" {
		t.Errorf("sockets = %s, %s", cfg.DBSocket(), cfg.MgmtSocket())
	}
}

func TestFileThenFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	file := writeFile(t, "nodeName: from-file\novsDatapathType: netdev\novsRunDir: /run/ovs-a\nresyncPeriod: 30s\n")
	cfg, err := parse(t, "--config", file, "--ovs-rundir=/run/ovs-b")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "from-file" || cfg.OVSDatapathType != "netdev" || cfg.OVSRunDir != "/run/ovs-b" || cfg.ResyncPeriod.Duration != 30*time.Second {
		t.Errorf("got %+v: want the file's values with --ovs-rundir winning", *cfg)
	}
	// flowCheckPeriod: 0 in the file turns the check off.
	cfg, err = parse(t, "--config", writeFile(t, "nodeName: n\nflowCheckPeriod: 0s\n"))
	if err != nil || cfg.FlowCheckPeriod.Duration != 0 {
		t.Errorf("flowCheckPeriod: 0s in the file: %v, %+v", err, cfg)
	}
	// A flag set to its default value still wins over the file.
	cfg, err = parse(t, "--config", file, "--ovs-datapath-type=system")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OVSDatapathType != "system" {
		t.Errorf("--ovs-datapath-type=system lost to the file's netdev")
	}
}

func TestBadValuesNameTheFlag(t *testing.T) {
	t.Setenv("NODE_NAME", "worker1")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--node-name="}, "node-name"},
		{[]string{"--node-name=Worker_1"}, "node-name"},
		{[]string{"--kubeconfig=/does/not/exist"}, "kubeconfig"},
		{[]string{"--ovs-bridge=a-very-long-bridge-name"}, "ovs-bridge"},
		{[]string{"--ovs-rundir=relative/dir"}, "ovs-rundir"},
		{[]string{"--ovs-datapath-type=dpdk"}, "ovs-datapath-type"},
		{[]string{"--gateway-interface=gw/0"}, "gateway-interface"},
		{[]string{"--gateway-interface=br-int"}, "gateway-interface"},
		{[]string{"--virtual-mac=zz:bb:cc:dd:ee:ff"}, "virtual-mac"},
		{[]string{"--virtual-mac=01:00:5e:00:00:01"}, "virtual-mac"},
		{[]string{"--virtual-mac=00:00:00:00:00:00"}, "virtual-mac"},
		{[]string{"--resync-period=10ms"}, "resync-period"},
		{[]string{"--flow-check-period=10ms"}, "flow-check-period"},
		{[]string{"--flow-check-period=-1s"}, "flow-check-period"},
		{[]string{"--api-socket=relative.sock"}, "api-socket"},
		{[]string{"--api-socket=/" + strings.Repeat("x", 120)}, "api-socket"},
		{[]string{"--metrics-bind-address=9475"}, "metrics-bind-address"},
		{[]string{"--metrics-bind-address=127.0.0.1:http"}, "metrics-bind-address"},
		{[]string{"--metrics-bind-address=:70000"}, "metrics-bind-address"},
		{[]string{"--config=" + writeFile(t, "nodeNmae: typo\n")}, "config"},
		{[]string{"--config=" + writeFile(t, "virtualMAC: [1, 2]\n")}, "config"},
		{[]string{"--config=/no/such/file.yaml"}, "config"},
	} {
		_, err := parse(t, tc.args...)
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("%v: error %v, want a FlagError for --%s", tc.args, err, tc.flag)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "invalid --"+tc.flag+":") {
			t.Errorf("%v: message %q is not one line starting with %q", tc.args, msg, "invalid --"+tc.flag+":")
		}
	}
	// Unknown flags and stray arguments are usage errors too.
	for _, args := range [][]string{{"--no-such-flag"}, {"worker1"}} {
		var fe *FlagError
		if _, err := parse(t, args...); !errors.As(err, &fe) {
			t.Errorf("%v: error %v, want a FlagError", args, err)
		}
	}
}

func TestAPISocketAndMetricsAddress(t *testing.T) {
	t.Setenv("NODE_NAME", "worker1")
	cfg, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APISocket != "/var/run/noderoute/agent.sock" || cfg.MetricsAddress() != "127.0.0.1:9475" {
		t.Errorf("defaults: socket %q, metrics %q", cfg.APISocket, cfg.MetricsAddress())
	}
	// 0 and empty turn the servers off, from flags or from the file.
	for _, args := range [][]string{
		{"--api-socket=", "--metrics-bind-address=0"},
		{"--config", writeFile(t, "apiSocket: \"\"\nmetricsBindAddress: \"\"\n")},
		{"--config", writeFile(t, "metricsBindAddress: \"0\"\napiSocket: \"\"\n")},
	} {
		cfg, err := parse(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if cfg.APISocket != "" || cfg.MetricsAddress() != "" {
			t.Errorf("%v: socket %q, metrics %q, want both off", args, cfg.APISocket, cfg.MetricsAddress())
		}
	}
	cfg, err = parse(t, "--config", writeFile(t, "apiSocket: /run/a.sock\nmetricsBindAddress: 0.0.0.0:9000\n"), "--metrics-bind-address=:9100")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APISocket != "/run/a.sock" || cfg.MetricsAddress() != ":9100" {
		t.Errorf("socket %q, metrics %q", cfg.APISocket, cfg.MetricsAddress())
	}
}

func TestParseForCleanupNeedsNoNodeName(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	parseCleanup := func(args ...string) (*Config, error) {
		fs := flag.NewFlagSet("noderoute-agent cleanup", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return ParseForCleanup(fs, args)
	}
	cfg, err := parseCleanup("--ovs-bridge=br-test")
	if err != nil {
		t.Fatalf("cleanup without a node name: %v", err)
	}
	if cfg.OVSBridge != "br-test" {
		t.Errorf("bridge %q, want br-test", cfg.OVSBridge)
	}
	// Other values are checked as for the agent.
	if _, err := parseCleanup("--ovs-rundir=relative"); err == nil || !strings.Contains(err.Error(), "invalid --ovs-rundir") {
		t.Errorf("bad --ovs-rundir: %v, want an error naming it", err)
	}
	if _, err := parseCleanup("--node-name=Not_A_Node"); err == nil || !strings.Contains(err.Error(), "invalid --node-name") {
		t.Errorf("bad --node-name: %v, want an error naming it", err)
	}
	// The agent itself still needs one.
	if _, err := parse(t); err == nil || !strings.Contains(err.Error(), "invalid --node-name") {
		t.Errorf("agent without a node name: %v, want an error naming --node-name", err)
	}
}
