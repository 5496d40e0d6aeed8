//go:build e2e

package e2e

import (
	"context"
	"io"

	"k8s.io/client-go/kubernetes"
)

// Provider is what the e2e cases need from a cluster, whatever runs it: the
// local cluster of network namespaces (hack/local-cluster.sh) or kind.
type Provider interface {
	// Nodes returns the names of the cluster's nodes that run an agent.
	Nodes() []string
	// Kubectl runs kubectl against the cluster with admin rights.
	Kubectl(ctx context.Context, args ...string) (string, error)
	// Clientset returns a client-go clientset with admin rights, for the
	// cases that make many API calls at once.
	Clientset() (kubernetes.Interface, error)
	// Exec runs a command in a node's network namespace (local) or in the
	// agent's container on that node (kind), where ovs-ofctl, ip and
	// ping work against the node's bridge and routing table.
	Exec(ctx context.Context, node string, cmd ...string) (string, error)
	// RestartAgent restarts the agent of one node; kill means SIGKILL
	// rather than SIGTERM.
	RestartAgent(ctx context.Context, node string, kill bool) error
	// AgentID identifies the agent process running on a node (local: its
	// pid and start time; kind: its container's restart count), so that a
	// case can tell whether an agent restarted or crashed meanwhile. It
	// fails when no agent runs there.
	AgentID(ctx context.Context, node string) (string, error)
	// StopAPIServer stops etcd and kube-apiserver; StartAPIServer brings
	// them back with their data. Providers that cannot do this return an
	// error wrapping ErrUnsupported.
	StopAPIServer(ctx context.Context) error
	StartAPIServer(ctx context.Context) error
}

// What only some providers can do; cases check with a type assertion and
// skip (or leave out a step) otherwise.

// interruptibleExecer runs a command in a node like Exec, writing what it
// prints to out as it prints it, and stops it with SIGINT (not SIGKILL)
// when ctx is done, so that a probe loop can print its summary.
type interruptibleExecer interface {
	ExecInterruptible(ctx context.Context, node string, out io.Writer, cmd ...string) error
}

// behindAPIDeleter deletes a Node object while the API server is stopped,
// straight from its storage: what the API server finds when it comes back
// is as if the Node had been deleted while the agents' watches were broken.
type behindAPIDeleter interface {
	DeleteNodeBehindAPIServer(ctx context.Context, name string) error
}

// capsRestarter restarts a node's agent with only the given Linux
// capabilities (comma-separated names such as "net_admin", or "none"), and
// reads the capability sets of the running agent from /proc/<pid>/status
// (CapInh, CapPrm, CapEff, CapBnd, CapAmb and NoNewPrivs, as written
// there).
type capsRestarter interface {
	RestartAgentWithCaps(ctx context.Context, node, caps string) error
	AgentStatus(node string) (map[string]string, error)
	// AgentSocket is the path of the agent's local API socket.
	AgentSocket(node string) string
}

// agentStopper stops a node's agent and leaves it stopped (RestartAgent
// starts it again), and says where the node's OVS run directory is, for
// `noderoute-agent cleanup` run through Exec. The kind provider has no such
// thing: there the agent is the DaemonSet's container, and Exec runs in it.
type agentStopper interface {
	StopAgent(ctx context.Context, node string) error
	OVSRunDir(node string) string
}
