//go:build e2e

package e2e

import "context"

// Provider is what the e2e cases need from a cluster, whatever runs it: the
// local cluster of network namespaces (hack/local-cluster.sh) or kind.
type Provider interface {
	// Nodes returns the names of the cluster's nodes that run an agent.
	Nodes() []string
	// Kubectl runs kubectl against the cluster with admin rights.
	Kubectl(ctx context.Context, args ...string) (string, error)
	// Exec runs a command in a node's network namespace (local) or in the
	// agent's container on that node (kind), where ovs-ofctl, ip and
	// ping work against the node's bridge and routing table.
	Exec(ctx context.Context, node string, cmd ...string) (string, error)
	// RestartAgent restarts the agent of one node; kill means SIGKILL
	// rather than SIGTERM.
	RestartAgent(ctx context.Context, node string, kill bool) error
	// StopAPIServer stops etcd and kube-apiserver; StartAPIServer brings
	// them back with their data. Providers that cannot do this return an
	// error wrapping ErrUnsupported.
	StopAPIServer(ctx context.Context) error
	StartAPIServer(ctx context.Context) error
}
