package noderoute

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TrimNode is the Node informer's transform: it keeps only what the agent
// reads (name, UID, resource version, deletion timestamp, pod CIDRs) and
// drops the rest before the object enters the cache. A real Node carries
// status (conditions, addresses, images: often 10-20 KB) and managedFields;
// in a large cluster, keeping them whole would dominate the agent's memory
// (see docs/performance.md, Memory).
//
// Tombstones and objects that are not Nodes pass through unchanged.
func TrimNode(obj interface{}) (interface{}, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		TypeMeta: node.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              node.Name,
			UID:               node.UID,
			ResourceVersion:   node.ResourceVersion,
			DeletionTimestamp: node.DeletionTimestamp,
		},
		Spec: corev1.NodeSpec{
			PodCIDR:  node.Spec.PodCIDR,
			PodCIDRs: node.Spec.PodCIDRs,
		},
	}, nil
}

var _ cache.TransformFunc = TrimNode
