//go:build linux

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/noderoute/noderoute/test/framework/localapi"

	"github.com/noderoute/noderoute/test/framework/nodesim"
)

// TestAgentAgainstRealAPIServer runs worker1's agent against a real etcd +
// kube-apiserver, with the least-privilege identity the DaemonSet uses
// (nodes get/list/watch only), and checks it produces the three-Node example
// cluster's table 20 and follows a Node added and one deleted.
func TestAgentAgainstRealAPIServer(t *testing.T) {
	api := localapi.Start(t, localapi.Options{})
	n := nodesim.NewHost(t)

	ctx := context.Background()
	for _, obj := range nodesim.ClusterNodes() {
		if _, err := api.AdminClient.CoreV1().Nodes().Create(ctx, obj.(*corev1.Node), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", api.NodeReaderKubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	reader := kubernetes.NewForConfigOrDie(restCfg)

	start := time.Now()
	n.StartAgent(t, reader, time.Minute)
	t.Logf("agent start to first full sync against the real API server: %s", time.Since(start).Round(time.Millisecond))

	table20 := func() string {
		return strings.Join(lines(must(t)(n.OVS.Ofctl("dump-flows", nodesim.Bridge, "table=20", "--no-stats"))), "\n")
	}
	assertSeedTable20(t, n)

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		begin := time.Now()
		for !cond() {
			if time.Since(begin) > 30*time.Second {
				t.Fatalf("%s: not seen within 30s\n%s", what, table20())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: followed in %s", what, time.Since(begin).Round(time.Millisecond))
	}
	worker3 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker3"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.222.3.0/24"}}}
	if _, err := api.AdminClient.CoreV1().Nodes().Create(ctx, worker3, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("Node worker3 added", func() bool {
		routes, _ := n.OVS.Exec("ip", "route", "show", "10.222.3.0/24")
		return strings.Contains(table20(), "arp_tpa=10.222.3.1,") && strings.Contains(routes, "via 10.222.3.1")
	})
	if err := api.AdminClient.CoreV1().Nodes().Delete(ctx, "master", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("Node master deleted", func() bool {
		routes, _ := n.OVS.Exec("ip", "route", "show", "10.222.0.0/24")
		return !strings.Contains(table20(), "arp_tpa=10.222.0.1,") && routes == ""
	})
}
