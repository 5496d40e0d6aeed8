package localapi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/noderoute/noderoute/test/framework/localapi"
)

func TestLocalAPI(t *testing.T) {
	c := localapi.Start(t, localapi.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	podCIDRs := []string{"10.244.1.0/24", "fd00:10:244:1::/64"}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDRs[0], PodCIDRs: podCIDRs},
	}
	if _, err := c.AdminClient.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin: creating node: %v", err)
	}

	kubeconfig := c.NodeReaderKubeconfig(t)
	reader := clientFor(t, kubeconfig)

	checkNodeVisible := func(t *testing.T) {
		t.Helper()
		nodes, err := reader.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("node reader: listing nodes: %v", err)
		}
		var found *corev1.Node
		for i := range nodes.Items {
			if nodes.Items[i].Name == "node-a" {
				found = &nodes.Items[i]
			}
		}
		if found == nil {
			t.Fatalf("node reader: node-a not in list (%d nodes)", len(nodes.Items))
		}
		if !slices.Equal(found.Spec.PodCIDRs, podCIDRs) {
			t.Fatalf("node-a podCIDRs = %v, want %v", found.Spec.PodCIDRs, podCIDRs)
		}
	}

	t.Run("reader lists nodes", checkNodeVisible)

	t.Run("reader can watch nodes", func(t *testing.T) {
		w, err := reader.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("node reader: watching nodes: %v", err)
		}
		w.Stop()
	})

	t.Run("reader cannot list secrets", func(t *testing.T) {
		for _, ns := range []string{metav1.NamespaceSystem, metav1.NamespaceAll} {
			_, err := reader.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			if !apierrors.IsForbidden(err) {
				t.Errorf("listing secrets in %q: got %v, want Forbidden", ns, err)
			}
		}
	})

	t.Run("reader cannot patch nodes", func(t *testing.T) {
		patch := []byte(`{"metadata":{"labels":{"noderoute.io/test":"x"}}}`)
		_, err := reader.CoreV1().Nodes().Patch(ctx, "node-a", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("patching node: got %v, want Forbidden", err)
		}
		_, err = reader.CoreV1().Nodes().Patch(ctx, "node-a", types.MergePatchType, []byte(`{"status":{"phase":"x"}}`),
			metav1.PatchOptions{}, "status")
		if !apierrors.IsForbidden(err) {
			t.Errorf("patching node status: got %v, want Forbidden", err)
		}
	})

	t.Run("kubectl", func(t *testing.T) {
		out, err := c.Kubectl("get", "nodes", "-o", "name")
		if err != nil {
			t.Skipf("kubectl: %v: %s", err, out)
		}
		if out != "node/node-a\n" {
			t.Errorf("kubectl get nodes = %q", out)
		}
	})

	t.Run("restart keeps state and credentials", func(t *testing.T) {
		c.Stop()
		if c.Running() {
			t.Fatal("Running() after Stop")
		}
		short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
		_, err := reader.CoreV1().Nodes().Get(short, "node-a", metav1.GetOptions{})
		cancelShort()
		if err == nil {
			t.Fatal("API server still answering after Stop")
		}
		c.StartAgain()
		checkNodeVisible(t)
	})
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
