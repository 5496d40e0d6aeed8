// Package localcluster defines the layout of a local cluster of network
// namespaces (hack/local-cluster.sh): its directory
// <repo>/_output/clusters/<name>/ and every file in it, its namespaces, and
// the control plane's endpoints inside <name>-net. The script (through
// `hack/tools/localcluster paths`), that tool and the e2e suite's local
// provider all take them from here, so the layout is written down once.
// docs/local-cluster.md describes it.
package localcluster

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
)

const (
	// EtcdClientURL and EtcdPeerURL are etcd's, on the loopback of
	// <name>-net.
	EtcdClientURL = "http://127.0.0.1:2379"
	EtcdPeerURL   = "http://127.0.0.1:2380"
	// APIServerPort is kube-apiserver's port on the underlay address.
	APIServerPort = 6443
)

// nameRE is what a cluster name may be: it prefixes namespace names, which
// must stay short and distinct.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// Layout is where cluster Name of the repository at Root keeps its files.
type Layout struct {
	Root string
	Name string
}

// New checks the cluster name and returns its layout.
func New(root, name string) (Layout, error) {
	if !nameRE.MatchString(name) {
		return Layout{}, fmt.Errorf("invalid cluster name '%s': want [a-z][a-z0-9-]*, at most 20 characters", name)
	}
	return Layout{Root: root, Name: name}, nil
}

// ClustersDir holds one directory per cluster.
func ClustersDir(root string) string { return filepath.Join(root, "_output", "clusters") }

// Dir is the cluster's directory: everything the cluster writes is in it,
// and `down` removes it.
func (l Layout) Dir() string { return filepath.Join(ClustersDir(l.Root), l.Name) }

// StateFile holds the settings of a cluster that is up (written when `up`
// completes).
func (l Layout) StateFile() string { return filepath.Join(l.Dir(), "cluster.env") }

// AdminKubeconfig authenticates with the static admin token.
func (l Layout) AdminKubeconfig() string { return filepath.Join(l.Dir(), "admin.kubeconfig") }

// AgentKubeconfig authenticates with the noderoute-agent ServiceAccount's
// token.
func (l Layout) AgentKubeconfig() string { return filepath.Join(l.Dir(), "agent.kubeconfig") }

// AgentRBAC and NodesManifest are what `up` applied.
func (l Layout) AgentRBAC() string     { return filepath.Join(l.Dir(), "agent-rbac.yaml") }
func (l Layout) NodesManifest() string { return filepath.Join(l.Dir(), "nodes.yaml") }

// AgentBin is the copy of bin/noderoute-agent the agents run.
func (l Layout) AgentBin() string { return filepath.Join(l.Dir(), "bin", "noderoute-agent") }

// PKI is the control plane's credentials.
func (l Layout) PKI() PKI { return PKI{Dir: filepath.Join(l.Dir(), "pki")} }

// ControlPlaneDir holds etcd's data and the control plane's logs and pid
// files.
func (l Layout) ControlPlaneDir() string { return filepath.Join(l.Dir(), "control-plane") }

// EtcdDataDir is etcd's --data-dir.
func (l Layout) EtcdDataDir() string { return filepath.Join(l.ControlPlaneDir(), "etcd-data") }

// PidFile and LogFile are those of a control-plane component ("etcd" or
// "kube-apiserver").
func (l Layout) PidFile(component string) string {
	return filepath.Join(l.ControlPlaneDir(), component+".pid")
}
func (l Layout) LogFile(component string) string {
	return filepath.Join(l.ControlPlaneDir(), component+".log")
}

// NetNS is the namespace of the underlay bridge, etcd and kube-apiserver.
func (l Layout) NetNS() string { return l.Name + "-net" }

// NodeNetNS is node's namespace.
func (l Layout) NodeNetNS(node string) string { return l.Name + "-" + node }

// NetNSPath is the path of a namespace made by `ip netns add`.
func NetNSPath(ns string) string { return filepath.Join("/var/run/netns", ns) }

// NodeDir holds node's agent files and its OVS run dir.
func (l Layout) NodeDir(node string) string { return filepath.Join(l.Dir(), node) }

// AgentPidFile, AgentLog and AgentSocket are node's agent's pid file, log
// (appended across restarts, one "==== <time>: starting ..." line before
// each start) and local API socket.
func (l Layout) AgentPidFile(node string) string { return filepath.Join(l.NodeDir(node), "agent.pid") }
func (l Layout) AgentLog(node string) string     { return filepath.Join(l.NodeDir(node), "agent.log") }
func (l Layout) AgentSocket(node string) string  { return filepath.Join(l.NodeDir(node), "agent.sock") }

// OVSDir is node's OVS run dir (the agent's --ovs-rundir).
func (l Layout) OVSDir(node string) string { return filepath.Join(l.NodeDir(node), "ovs") }

// OVS is node's OVS instance (its run dir's files), without its tools.
func (l Layout) OVS(node string) *ovsdaemon.Instance {
	return &ovsdaemon.Instance{RunDir: l.OVSDir(node)}
}

// PKI is a control plane's credentials directory: what kube-apiserver is
// given and the clients trust. test/framework/localapi writes it.
type PKI struct{ Dir string }

// CACert is the PEM CA that signed the serving certificate.
func (p PKI) CACert() string { return filepath.Join(p.Dir, "ca.crt") }

// ServingCert and ServingKey are kube-apiserver's TLS pair.
func (p PKI) ServingCert() string { return filepath.Join(p.Dir, "apiserver.crt") }
func (p PKI) ServingKey() string  { return filepath.Join(p.Dir, "apiserver.key") }

// SAKey and SAPub are the ServiceAccount token signing key pair.
func (p PKI) SAKey() string { return filepath.Join(p.Dir, "sa.key") }
func (p PKI) SAPub() string { return filepath.Join(p.Dir, "sa.pub") }

// Tokens is the static token file (token,user,uid,"groups").
func (p PKI) Tokens() string { return filepath.Join(p.Dir, "tokens.csv") }

// GeneratedDir is kube-apiserver's --cert-dir.
func (p PKI) GeneratedDir() string { return filepath.Join(p.Dir, "generated") }
