package main

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeShape says what a bench Node carries besides its name and pod CIDR.
type nodeShape string

const (
	// shapeMinimal: name, the bench label and the pod CIDR, nothing else.
	shapeMinimal nodeShape = "minimal"
	// shapeRealistic: a Node as a kubelet writes it (labels, annotations,
	// addresses, conditions, capacity, nodeInfo, a list of images):
	// about 10 KB of JSON, which is what an agent lists, decodes and
	// receives in every status update on a real cluster.
	shapeRealistic nodeShape = "realistic"
)

func parseNodeShape(s string) (nodeShape, error) {
	switch nodeShape(s) {
	case shapeMinimal, shapeRealistic:
		return nodeShape(s), nil
	}
	return "", fmt.Errorf("node shape %q: want %s or %s", s, shapeMinimal, shapeRealistic)
}

// benchNode returns bench-<i> in the given shape.
func benchNode(i int, shape nodeShape) *corev1.Node {
	cidr, _ := cidrOf(i)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   nodeName(i),
			Labels: map[string]string{benchLabel: "true"},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr.String(), PodCIDRs: []string{cidr.String()}},
	}
	if shape == shapeRealistic {
		addKubeletFields(n, i)
	}
	return n
}

// benchImageCount is how many container images a realistic Node lists
// (kubelets report up to 50 by default, --node-status-max-images).
const benchImageCount = 40

// addKubeletFields fills what a kubelet (and kubeadm) put on a Node. The
// values vary with i where a real cluster's would (addresses, IDs, image
// digests), so that no two Nodes encode alike.
func addKubeletFields(n *corev1.Node, i int) {
	name := n.Name
	zone := fmt.Sprintf("zone-%c", 'a'+i%3)
	for k, v := range map[string]string{
		"beta.kubernetes.io/arch":                  "amd64",
		"beta.kubernetes.io/os":                    "linux",
		"kubernetes.io/arch":                       "amd64",
		"kubernetes.io/hostname":                   name,
		"kubernetes.io/os":                         "linux",
		"node.kubernetes.io/instance-type":         "n2-standard-8",
		"topology.kubernetes.io/region":            "region-1",
		"topology.kubernetes.io/zone":              zone,
		"node-role.kubernetes.io/worker":           "",
		"failure-domain.beta.kubernetes.io/region": "region-1",
	} {
		n.Labels[k] = v
	}
	n.Annotations = map[string]string{
		"kubeadm.alpha.kubernetes.io/cri-socket":                 "unix:///run/containerd/containerd.sock",
		"node.alpha.kubernetes.io/ttl":                           "0",
		"volumes.kubernetes.io/controller-managed-attach-detach": "true",
		"csi.volume.kubernetes.io/nodeid":                        fmt.Sprintf(`{"pd.csi.storage.gke.io":"projects/bench/zones/%s/instances/%s"}`, zone, name),
	}
	n.Spec.ProviderID = fmt.Sprintf("gce://bench/%s/%s", zone, name)

	ip := fmt.Sprintf("172.%d.%d.%d", 16+i/65536, (i/256)%256, i%256)
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: ip},
		{Type: corev1.NodeHostName, Address: name},
	}
	n.Status.Conditions = benchConditions(time.Now())
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("8"),
		corev1.ResourceMemory:           resource.MustParse("32863312Ki"),
		corev1.ResourceEphemeralStorage: resource.MustParse("101430960Ki"),
		corev1.ResourcePods:             resource.MustParse("110"),
		"hugepages-1Gi":                 resource.MustParse("0"),
		"hugepages-2Mi":                 resource.MustParse("0"),
	}
	n.Status.Capacity = res
	n.Status.Allocatable = corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("7910m"),
		corev1.ResourceMemory:           resource.MustParse("29620560Ki"),
		corev1.ResourceEphemeralStorage: resource.MustParse("93478772582"),
		corev1.ResourcePods:             resource.MustParse("110"),
		"hugepages-1Gi":                 resource.MustParse("0"),
		"hugepages-2Mi":                 resource.MustParse("0"),
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15),
		SystemUUID:              fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
		BootID:                  fmt.Sprintf("%08x-1111-4111-8111-%012x", i, i*7),
		KernelVersion:           "6.1.0-27-cloud-amd64",
		OSImage:                 "Debian GNU/Linux 12 (bookworm)",
		ContainerRuntimeVersion: "containerd://1.7.24",
		KubeletVersion:          "v1.37.2",
		OperatingSystem:         "linux",
		Architecture:            "amd64",
	}
	n.Status.Images = make([]corev1.ContainerImage, 0, benchImageCount)
	for k := 0; k < benchImageCount; k++ {
		repo := fmt.Sprintf("registry.example.com/platform/service-%02d", k)
		digest := fmt.Sprintf("%016x%016x%016x%016x", uint64(k+1)*0x9e3779b97f4a7c15, uint64(i), uint64(k)*31, uint64(i+k))
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{
			Names:     []string{repo + "@sha256:" + digest, fmt.Sprintf("%s:v1.%d.%d", repo, k, i%10)},
			SizeBytes: int64(20_000_000 + 1_000_003*k),
		})
	}
}

// benchConditions are a kubelet's five Node conditions with heartbeat time
// at: a status update changes nothing else.
func benchConditions(at time.Time) []corev1.NodeCondition {
	hb := metav1.NewTime(at.Truncate(time.Second))
	since := metav1.NewTime(at.Add(-24 * time.Hour).Truncate(time.Second))
	c := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: hb, LastTransitionTime: since, Reason: reason, Message: msg}
	}
	return []corev1.NodeCondition{
		c(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "RouteController created a route"),
		c(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		c(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		c(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		c(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
	}
}
