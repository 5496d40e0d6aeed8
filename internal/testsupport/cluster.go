package testsupport

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterNode is one Node of the three-Node cluster the tests program
// routes for, with its IPv4 and IPv6 pod CIDRs.
type ClusterNode struct {
	Name      string
	PodCIDR   string
	PodCIDRv6 string
}

// ClusterNodes are the three-Node cluster: master, worker1 and worker2,
// with the pod CIDRs 10.222.<i>.0/24 and, for dual stack,
// fd00:10:222:<i>::/64. The agent under test usually runs on worker1
// (LocalNode), so its routes go to master and worker2.
var ClusterNodes = []ClusterNode{
	{Name: "master", PodCIDR: "10.222.0.0/24", PodCIDRv6: "fd00:10:222::/64"},
	{Name: "worker1", PodCIDR: "10.222.1.0/24", PodCIDRv6: "fd00:10:222:1::/64"},
	{Name: "worker2", PodCIDR: "10.222.2.0/24", PodCIDRv6: "fd00:10:222:2::/64"},
}

// LocalNode is the Node of ClusterNodes the agent under test runs on.
const LocalNode = "worker1"

// Node returns a Node object with the given pod CIDRs.
func Node(name string, cidrs ...string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
}

// ClusterNodeObjects returns ClusterNodes as Node objects with IPv4 pod
// CIDRs only.
func ClusterNodeObjects() []*corev1.Node {
	nodes := make([]*corev1.Node, 0, len(ClusterNodes))
	for _, n := range ClusterNodes {
		nodes = append(nodes, Node(n.Name, n.PodCIDR))
	}
	return nodes
}

// DualStackClusterNodeObjects returns ClusterNodes as Node objects with
// an IPv4 and an IPv6 pod CIDR each.
func DualStackClusterNodeObjects() []*corev1.Node {
	nodes := make([]*corev1.Node, 0, len(ClusterNodes))
	for _, n := range ClusterNodes {
		nodes = append(nodes, Node(n.Name, n.PodCIDR, n.PodCIDRv6))
	}
	return nodes
}

// ClusterPodCIDRs maps ClusterNodes' names to their IPv4 pod CIDRs.
func ClusterPodCIDRs() map[string]string {
	m := make(map[string]string, len(ClusterNodes))
	for _, n := range ClusterNodes {
		m[n.Name] = n.PodCIDR
	}
	return m
}
