// Package config holds the agent's settings: defaults, the YAML config file,
// command-line flags (which win over the file) and validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

// Config is the agent's configuration. The JSON names are the keys of the
// YAML config file.
type Config struct {
	// NodeName is the Kubernetes Node this agent runs on.
	NodeName string `json:"nodeName,omitempty"`
	// Kubeconfig is a kubeconfig file; empty means in-cluster config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// OVSBridge is the integration bridge.
	OVSBridge string `json:"ovsBridge,omitempty"`
	// OVSRunDir holds OVSDB's socket (db.sock) and the bridge's OpenFlow
	// management socket (<bridge>.mgmt).
	OVSRunDir string `json:"ovsRunDir,omitempty"`
	// OVSDatapathType is the bridge's datapath: system (kernel module) or
	// netdev (userspace).
	OVSDatapathType string `json:"ovsDatapathType,omitempty"`
	// GatewayInterface is the bridge's internal port that carries the
	// node's gateway IP and the routes to other Nodes.
	GatewayInterface string `json:"gatewayInterface,omitempty"`
	// VirtualMAC answers ARP requests and Neighbor Solicitations for
	// remote gateways.
	VirtualMAC string `json:"virtualMAC,omitempty"`
	// ResyncPeriod is how often our routes are compared with the Nodes
	// and repaired.
	ResyncPeriod Duration `json:"resyncPeriod,omitempty"`
	// FlowCheckPeriod is how often the bridge's flows are compared with
	// the agent's and missing ones restored; 0 turns the check off.
	FlowCheckPeriod Duration `json:"flowCheckPeriod,omitempty"`
	// APISocket is the unix socket of the local API agentctl talks to;
	// empty turns the API off.
	APISocket string `json:"apiSocket,omitempty"`
	// MetricsBindAddress is the host:port of /metrics, /healthz and
	// /readyz; empty or "0" turns them off.
	MetricsBindAddress string `json:"metricsBindAddress,omitempty"`
}

// DefaultMetricsBindAddress is the loopback address: the agent runs with the
// host's network, and its metrics need not be reachable from elsewhere
// unless the operator says so.
const DefaultMetricsBindAddress = "127.0.0.1:9475"

// MetricsAddress is the metrics server's address, "" when it is off.
func (c *Config) MetricsAddress() string {
	if c.MetricsBindAddress == "0" {
		return ""
	}
	return c.MetricsBindAddress
}

// Duration is a time.Duration written as "30s" or "5m" in the config file.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.String() + `"`), nil
}

// Default returns the defaults; NodeName comes from $NODE_NAME, which the
// DaemonSet sets from the downward API.
func Default() Config {
	return Config{
		NodeName:           os.Getenv("NODE_NAME"),
		OVSBridge:          "br-int",
		OVSRunDir:          "/var/run/openvswitch",
		OVSDatapathType:    "system",
		GatewayInterface:   "antrea-gw0",
		VirtualMAC:         "aa:bb:cc:dd:ee:ff",
		ResyncPeriod:       Duration{time.Minute},
		FlowCheckPeriod:    Duration{openflow.DefaultFlowCheckPeriod},
		APISocket:          apiserver.DefaultSocket,
		MetricsBindAddress: DefaultMetricsBindAddress,
	}
}

// DBSocket is OVSDB's unix socket.
func (c *Config) DBSocket() string { return filepath.Join(c.OVSRunDir, "db.sock") }

// MgmtSocket is the bridge's OpenFlow management socket.
func (c *Config) MgmtSocket() string { return filepath.Join(c.OVSRunDir, c.OVSBridge+".mgmt") }

// MAC returns the parsed virtual MAC; call after Validate.
func (c *Config) MAC() net.HardwareAddr {
	mac, _ := net.ParseMAC(c.VirtualMAC)
	return mac
}

// FlagError is a bad command line or config value; the agent exits with
// code 2 on it, before touching anything.
type FlagError struct {
	Flag string
	Err  error
}

func (e *FlagError) Error() string {
	if e.Flag == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("invalid --%s: %v", e.Flag, e.Err)
}

func (e *FlagError) Unwrap() error { return e.Err }

// Validate checks every value and names the flag of the first bad one.
func (c *Config) Validate() error { return c.validate(true) }

// validate is Validate; requireNode false accepts an empty node name (a set
// one must still be valid).
func (c *Config) validate(requireNode bool) error {
	bad := func(flag, format string, args ...interface{}) error {
		return &FlagError{Flag: flag, Err: fmt.Errorf(format, args...)}
	}
	if c.NodeName == "" && requireNode {
		return bad("node-name", "empty: set --node-name or $NODE_NAME")
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); c.NodeName != "" && len(errs) > 0 {
		return bad("node-name", "%q is not a valid Node name: %s", c.NodeName, strings.Join(errs, "; "))
	}
	if c.Kubeconfig != "" {
		if _, err := os.Stat(c.Kubeconfig); err != nil {
			return bad("kubeconfig", "%v", err)
		}
	}
	if err := validInterfaceName(c.OVSBridge); err != nil {
		return bad("ovs-bridge", "%q: %v", c.OVSBridge, err)
	}
	if !filepath.IsAbs(c.OVSRunDir) {
		return bad("ovs-rundir", "%q is not an absolute path", c.OVSRunDir)
	}
	switch c.OVSDatapathType {
	case "system", "netdev":
	default:
		return bad("ovs-datapath-type", "%q: must be system or netdev", c.OVSDatapathType)
	}
	if err := validInterfaceName(c.GatewayInterface); err != nil {
		return bad("gateway-interface", "%q: %v", c.GatewayInterface, err)
	}
	if c.GatewayInterface == c.OVSBridge {
		return bad("gateway-interface", "%q is the bridge's own name", c.GatewayInterface)
	}
	mac, err := net.ParseMAC(c.VirtualMAC)
	switch {
	case err != nil:
		return bad("virtual-mac", "%v", err)
	case len(mac) != 6:
		return bad("virtual-mac", "%q is not a 48-bit Ethernet address", c.VirtualMAC)
	case mac[0]&1 == 1:
		return bad("virtual-mac", "%q is a multicast address", c.VirtualMAC)
	case mac.String() == "00:00:00:00:00:00":
		return bad("virtual-mac", "the all-zero address cannot answer ARP")
	}
	if c.ResyncPeriod.Duration < time.Second {
		return bad("resync-period", "%s is below 1s", c.ResyncPeriod.Duration)
	}
	if d := c.FlowCheckPeriod.Duration; d < 0 {
		return bad("flow-check-period", "%s is negative", d)
	} else if d != 0 && d < 100*time.Millisecond {
		// A check that finds a count off dumps our tables, at a cost
		// that grows with the number of Nodes (docs/performance.md):
		// shorter periods would keep the agent busy.
		return bad("flow-check-period", "%s is below 100ms (0 turns the check off)", d)
	}
	if sock := c.APISocket; sock != "" {
		if !filepath.IsAbs(sock) {
			return bad("api-socket", "%q is not an absolute path", sock)
		}
		if len(sock) > maxSocketPath {
			return bad("api-socket", "%q is longer than %d bytes, the limit of unix socket paths", sock, maxSocketPath)
		}
	}
	if addr := c.MetricsAddress(); addr != "" {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return bad("metrics-bind-address", "%v (want host:port, or 0 to turn metrics off)", err)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 && port != "0" {
			return bad("metrics-bind-address", "%q: port %q is not a number from 0 to 65535", addr, port)
		}
	}
	return nil
}

// maxSocketPath is the kernel's limit on unix socket paths.
const maxSocketPath = 107

// validInterfaceName applies the kernel's rules for link names.
func validInterfaceName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errors.New("not an interface name")
	case len(name) > 15:
		return errors.New("longer than 15 characters")
	case strings.ContainsAny(name, "/: \t\n"):
		return errors.New("contains '/', ':' or white space")
	}
	return nil
}

// Parse builds the configuration from args (without the program name):
// defaults, then the file named by --config, then the flags set on the
// command line. It returns flag.ErrHelp for -h/--help after printing usage
// to the flag set's output, and a *FlagError for anything bad.
func Parse(fs *flag.FlagSet, args []string) (*Config, error) {
	return parseConfig(fs, args, true)
}

// ParseForCleanup is Parse for `noderoute-agent cleanup`: the same flags and
// config file, so that the agent's own configuration can be passed as it
// is, but the node name may be empty, since cleanup only acts on this node's
// bridge and routing table and never asks the API server.
func ParseForCleanup(fs *flag.FlagSet, args []string) (*Config, error) {
	return parseConfig(fs, args, false)
}

func parseConfig(fs *flag.FlagSet, args []string, requireNode bool) (*Config, error) {
	cfg := Default()
	var configFile string
	flags := cfg // the flags' own values; only the ones set are used
	fs.StringVar(&configFile, "config", "", "YAML config file (keys: "+strings.Join(fileKeys(), ", ")+"); flags win over it")
	for _, f := range flagTable {
		f.register(fs, &flags)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &FlagError{Err: err}
	}
	if fs.NArg() > 0 {
		return nil, &FlagError{Err: fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))}
	}
	if configFile != "" {
		if err := loadFile(configFile, &cfg); err != nil {
			return nil, &FlagError{Flag: "config", Err: err}
		}
	}
	// A flag set on the command line wins over the file; one left unset
	// keeps the file's value (or the default).
	fs.Visit(func(set *flag.Flag) {
		if f, ok := lookupFlag(set.Name); ok {
			f.copy(&cfg, &flags)
		}
	})
	if err := cfg.validate(requireNode); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// loadFile reads a YAML config file over cfg; unknown keys are errors, so a
// typo does not silently leave a default in place.
func loadFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
