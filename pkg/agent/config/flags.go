package config

import (
	"flag"
	"fmt"
	"time"
)

// configFlag is one setting that has both a command-line flag and a config
// file key. flagTable lists them all; parseConfig registers the flags, lists
// the keys in --config's help and copies the flags set on the command line
// over the file from it, so that a new setting is one line here (and its
// field in Config).
type configFlag struct {
	// name is the flag (--name), key the config file's key (Config's JSON
	// name, which TestFlagTableMatchesConfig checks).
	name, key string
	// usage is the flag's help text; a default of the zero value is not
	// printed by the flag package.
	usage string
	// field returns the setting in c: a *string or a *time.Duration.
	field func(c *Config) any
}

// flagTable holds the settings in the order of the keys in --config's help.
var flagTable = []configFlag{
	{"node-name", "nodeName", "name of the Kubernetes Node this agent runs on (default $NODE_NAME)", func(c *Config) any { return &c.NodeName }},
	{"kubeconfig", "kubeconfig", "kubeconfig file (default: in-cluster config)", func(c *Config) any { return &c.Kubeconfig }},
	{"ovs-bridge", "ovsBridge", "OVS integration bridge", func(c *Config) any { return &c.OVSBridge }},
	{"ovs-rundir", "ovsRunDir", "OVS run directory: OVSDB at <dir>/db.sock, OpenFlow at <dir>/<bridge>.mgmt", func(c *Config) any { return &c.OVSRunDir }},
	{"ovs-datapath-type", "ovsDatapathType", "bridge datapath: system (kernel module) or netdev (userspace)", func(c *Config) any { return &c.OVSDatapathType }},
	{"gateway-interface", "gatewayInterface", "internal port holding this node's gateway IP", func(c *Config) any { return &c.GatewayInterface }},
	{"virtual-mac", "virtualMAC", "MAC address OVS answers ARP requests and IPv6 Neighbor Solicitations for remote gateways with", func(c *Config) any { return &c.VirtualMAC }},
	{"resync-period", "resyncPeriod", "how often our routes are compared with the Nodes and repaired", func(c *Config) any { return &c.ResyncPeriod.Duration }},
	{"flow-check-period", "flowCheckPeriod", "how often the bridge's flows are compared with the agent's and missing ones restored; 0 turns it off", func(c *Config) any { return &c.FlowCheckPeriod.Duration }},
	{"api-socket", "apiSocket", "unix socket (mode 0600) of the local API that agentctl uses; empty turns it off", func(c *Config) any { return &c.APISocket }},
	{"metrics-bind-address", "metricsBindAddress", "host:port serving /metrics, /healthz and /readyz; 0 or empty turns them off", func(c *Config) any { return &c.MetricsBindAddress }},
}

// register adds the flag to fs, writing into values, whose current value of
// the setting is the flag's default.
func (f configFlag) register(fs *flag.FlagSet, values *Config) {
	switch p := f.field(values).(type) {
	case *string:
		fs.StringVar(p, f.name, *p, f.usage)
	case *time.Duration:
		fs.DurationVar(p, f.name, *p, f.usage)
	default:
		panic(fmt.Sprintf("config flag %s: unsupported type %T", f.name, p))
	}
}

// copy sets the setting in dst to its value in src.
func (f configFlag) copy(dst, src *Config) {
	switch p := f.field(dst).(type) {
	case *string:
		*p = *f.field(src).(*string)
	case *time.Duration:
		*p = *f.field(src).(*time.Duration)
	}
}

func lookupFlag(name string) (configFlag, bool) {
	for _, f := range flagTable {
		if f.name == name {
			return f, true
		}
	}
	return configFlag{}, false
}

// fileKeys lists the config file's keys in table order.
func fileKeys() []string {
	keys := make([]string, 0, len(flagTable))
	for _, f := range flagTable {
		keys = append(keys, f.key)
	}
	return keys
}
