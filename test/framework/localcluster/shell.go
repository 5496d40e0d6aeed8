package localcluster

import (
	"fmt"
	"strings"

	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
)

// NodePlaceholder stands for the node's name in the per-node templates of
// ShellVars ("${T//@NODE@/worker1}" in bash).
const NodePlaceholder = "@NODE@"

// ShellVar is one assignment of ShellVars.
type ShellVar struct{ Name, Value string }

// ShellVars is the layout for hack/local-cluster.sh, which evals the
// output of `hack/tools/localcluster paths`: the cluster's paths, and
// per-node templates (names ending in _T) holding NodePlaceholder.
func (l Layout) ShellVars() []ShellVar {
	n := NodePlaceholder
	ovs := l.OVS(n)
	return []ShellVar{
		{"OUT_DIR", l.Dir()},
		{"CLUSTERS_DIR", ClustersDir(l.Root)},
		{"STATE_FILE", l.StateFile()},
		{"NET_NS", l.NetNS()},
		{"PKI_DIR", l.PKI().Dir},
		{"ADMIN_KUBECONFIG", l.AdminKubeconfig()},
		{"AGENT_KUBECONFIG", l.AgentKubeconfig()},
		{"AGENT_RBAC", l.AgentRBAC()},
		{"NODES_MANIFEST", l.NodesManifest()},
		{"AGENT_BIN", l.AgentBin()},
		{"CP_DIR", l.ControlPlaneDir()},
		{"ETCD_PID", l.PidFile("etcd")},
		{"ETCD_LOG", l.LogFile("etcd")},
		{"APISERVER_PID", l.PidFile("kube-apiserver")},
		{"APISERVER_LOG", l.LogFile("kube-apiserver")},
		{"ETCD_CLIENT_URL", EtcdClientURL},
		{"APISERVER_PORT", fmt.Sprint(APIServerPort)},
		{"NODE_NS_T", l.NodeNetNS(n)},
		{"NODE_DIR_T", l.NodeDir(n)},
		{"AGENT_PID_T", l.AgentPidFile(n)},
		{"AGENT_LOG_T", l.AgentLog(n)},
		{"AGENT_SOCK_T", l.AgentSocket(n)},
		{"OVS_DIR_T", l.OVSDir(n)},
		{"OVSDB_PID_T", ovs.Pidfile(ovsdaemon.Ovsdb)},
		{"VSWITCHD_PID_T", ovs.Pidfile(ovsdaemon.Vswitchd)},
		{"VSWITCHD_CTL_T", ovs.Ctl(ovsdaemon.Vswitchd)},
		{"VSWITCHD_LOG_T", ovs.Log(ovsdaemon.Vswitchd)},
	}
}

// ShellQuote quotes s for a POSIX shell: 'it'\”s'.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
