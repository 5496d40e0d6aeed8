package noderoute

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestTrimNodeKeepsWhatTheAgentReads(t *testing.T) {
	now := metav1.Now()
	full := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "worker2", UID: "u-1", ResourceVersion: "42", DeletionTimestamp: &now,
			Labels:        map[string]string{"a": "b"},
			Annotations:   map[string]string{"c": "d"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.NodeSpec{PodCIDR: "10.222.2.0/24", PodCIDRs: []string{"10.222.2.0/24", "fd00:10:222:2::/64"}, ProviderID: "x"},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.2"}},
			Images:    []corev1.ContainerImage{{Names: []string{"big"}}},
		},
	}
	got, err := TrimNode(full)
	if err != nil {
		t.Fatal(err)
	}
	n := got.(*corev1.Node)
	if n.Name != "worker2" || n.UID != "u-1" || n.ResourceVersion != "42" || n.DeletionTimestamp != &now {
		t.Errorf("identity not kept: %+v", n.ObjectMeta)
	}
	if !reflect.DeepEqual(nodePodCIDRs(n), nodePodCIDRs(full)) {
		t.Errorf("pod CIDRs %v, want %v", nodePodCIDRs(n), nodePodCIDRs(full))
	}
	if n.Labels != nil || n.Annotations != nil || n.ManagedFields != nil || n.Spec.ProviderID != "" ||
		!reflect.DeepEqual(n.Status, corev1.NodeStatus{}) {
		t.Errorf("fields the agent does not read were kept: %+v", n)
	}
	if !reflect.DeepEqual(GatewayAddresses(n), GatewayAddresses(full)) {
		t.Error("gateway addresses differ after the transform")
	}
	// A tombstone passes through.
	tomb := cache.DeletedFinalStateUnknown{Key: "worker2", Obj: full}
	if got, _ := TrimNode(tomb); !reflect.DeepEqual(got, tomb) {
		t.Errorf("tombstone changed: %v", got)
	}
}
