package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/noderoute/noderoute/test/framework/localapi"
)

// requireIntegration skips like the other integration tests: under -short
// and when not root (localapi.Start handles missing binaries).
func requireIntegration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode (needs kube-apiserver, etcd and kubectl)")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration test needs root (like test/integration; the pod test uses network namespaces and OVS)")
	}
}

// variant is one way of installing: kubectl apply arguments.
type variant struct {
	name string
	args []string
}

func variants(t *testing.T) []variant {
	vs := []variant{{plainManifest, []string{"-f", repoPath(t, plainManifest)}}}
	for _, dir := range kustomizations {
		vs = append(vs, variant{dir, []string{"-k", repoPath(t, dir)}})
	}
	return vs
}

// TestDeployOnAPIServer applies the manifests to a real kube-apiserver:
// server-side dry runs of every variant (schema errors fail), a real apply,
// the ServiceAccount's permissions, and the DaemonSet's pod (pod_linux_test.go).
func TestDeployOnAPIServer(t *testing.T) {
	requireIntegration(t)
	api := localapi.Start(t, localapi.Options{})
	kubectlBin(t) // skips (or fails) without kubectl
	kubectl := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := api.Kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	t.Run("DryRun", func(t *testing.T) {
		for _, v := range variants(t) {
			// --validate=strict: unknown or duplicate fields are errors on
			// the server, not warnings.
			out := kubectl(t, append([]string{"apply", "--dry-run=server", "--validate=strict"}, v.args...)...)
			t.Logf("kubectl apply --dry-run=server --validate=strict %s %s:\n%s", v.args[0], v.name, out)
			for _, obj := range []string{
				"serviceaccount/noderoute-agent",
				"clusterrole.rbac.authorization.k8s.io/noderoute-agent",
				"clusterrolebinding.rbac.authorization.k8s.io/noderoute-agent",
				"configmap/noderoute-agent",
				"daemonset.apps/noderoute-agent",
			} {
				if !strings.Contains(out, obj+" created (server dry run)") {
					t.Errorf("%s: no %q in the output", v.name, obj+" created (server dry run)")
				}
			}
			if n := strings.Count(out, "(server dry run)"); n != 5 {
				t.Errorf("%s: %d objects, want 5", v.name, n)
			}
		}
		// The clean-up DaemonSet (docs/install.md, "Uninstall").
		for dir := range cleanupKustomizations {
			out := kubectl(t, "apply", "--dry-run=server", "--validate=strict", "-k", repoPath(t, dir))
			t.Logf("kubectl apply --dry-run=server --validate=strict -k %s:\n%s", dir, out)
			if want := "daemonset.apps/noderoute-cleanup created (server dry run)"; strings.TrimSpace(out) != want {
				t.Errorf("%s: %q, want %q", dir, out, want)
			}
		}
		if out, err := api.Kubectl("get", "-n", namespace, "daemonset", name); err == nil || !strings.Contains(out, "NotFound") {
			t.Errorf("after the dry runs: kubectl get daemonset: %v %s (want NotFound)", err, out)
		}

		// The check has teeth: a misspelt field fails the dry run.
		data, err := os.ReadFile(repoPath(t, plainManifest))
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte(strings.Replace(string(data), "hostNetwork: true", "hostNetwrok: true", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := api.Kubectl("apply", "--dry-run=server", "--validate=strict", "-f", bad)
		if err == nil || !strings.Contains(out, "hostNetwrok") {
			t.Errorf("a manifest with hostNetwrok passed the dry run: %v\n%s", err, out)
		} else {
			t.Logf("negative control (hostNetwork misspelt) fails as it should:\n%s", strings.TrimSpace(out))
		}
	})

	if !t.Run("Apply", func(t *testing.T) {
		out := kubectl(t, "apply", "--validate=strict", "-f", repoPath(t, plainManifest))
		t.Logf("kubectl apply -f %s:\n%s", plainManifest, out)
		if strings.Count(out, " created") != 5 {
			t.Errorf("want 5 objects created")
		}
		// The kustomization renders the same objects: applying it changes nothing.
		out = kubectl(t, "apply", "--validate=strict", "-k", repoPath(t, "deploy"))
		if strings.Count(out, " unchanged") != 5 {
			t.Errorf("kubectl apply -k deploy/ after -f %s, want 5 objects unchanged:\n%s", plainManifest, out)
		}
	}) {
		t.FailNow()
	}

	t.Run("RBAC", func(t *testing.T) { testRBAC(t, api, kubectl) })
	t.Run("Pod", func(t *testing.T) { testPod(t, api) })
}

// testRBAC checks the ServiceAccount of the manifests, bound by their
// ClusterRoleBinding: with kubectl auth can-i (impersonating it, with the
// groups a token of it carries), then with a real token and real requests.
func testRBAC(t *testing.T, api *localapi.Cluster, kubectl func(*testing.T, ...string) string) {
	as := []string{
		"--as=" + serviceAccountUser,
		"--as-group=system:serviceaccounts",
		"--as-group=system:serviceaccounts:" + namespace,
		"--as-group=system:authenticated",
	}
	canI := func(args ...string) string {
		out, _ := api.Kubectl(append(append([]string{"auth", "can-i"}, args...), as...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	// RBAC is served from an informer cache: wait for the binding.
	deadline := time.Now().Add(30 * time.Second)
	for canI("list", "nodes") != "yes" {
		if time.Now().After(deadline) {
			t.Fatalf("the ServiceAccount still cannot list nodes 30s after the apply")
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("can-i", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"get", "nodes"}, "yes"},
			{[]string{"list", "nodes"}, "yes"},
			{[]string{"watch", "nodes"}, "yes"},
			{[]string{"create", "nodes"}, "no"},
			{[]string{"update", "nodes"}, "no"},
			{[]string{"patch", "nodes"}, "no"},
			{[]string{"delete", "nodes"}, "no"},
			{[]string{"patch", "nodes", "--subresource=status"}, "no"},
			{[]string{"get", "secrets", "-n", namespace}, "no"},
			{[]string{"list", "secrets", "-A"}, "no"},
			{[]string{"watch", "secrets", "-A"}, "no"},
			{[]string{"get", "configmaps", "-n", namespace}, "no"},
			{[]string{"list", "pods", "-A"}, "no"},
			{[]string{"create", "pods", "-n", namespace}, "no"},
			{[]string{"create", "serviceaccounts/token", "-n", namespace}, "no"},
			{[]string{"update", "daemonsets.apps", "-n", namespace}, "no"},
		} {
			if got := canI(c.args...); got != c.want {
				t.Errorf("kubectl auth can-i %s --as=%s: %q, want %q", strings.Join(c.args, " "), serviceAccountUser, got, c.want)
			}
		}
		out, _ := api.Kubectl(append([]string{"auth", "can-i", "--list"}, as...)...)
		t.Logf("kubectl auth can-i --list --as=%s (with its groups):\n%s", serviceAccountUser, out)
	})

	t.Run("token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		admin := api.AdminClient
		token := strings.TrimSpace(kubectl(t, "create", "token", name, "-n", namespace, "--duration=10m"))
		kc, err := api.WriteKubeconfig("noderoute-agent-token", token)
		if err != nil {
			t.Fatal(err)
		}
		restCfg, err := clientcmd.BuildConfigFromFlags("", kc)
		if err != nil {
			t.Fatal(err)
		}
		sa := kubernetes.NewForConfigOrDie(restCfg)

		review, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectReview with the token: %v", err)
		}
		if u := review.Status.UserInfo.Username; u != serviceAccountUser {
			t.Fatalf("the token authenticates as %q, want %s", u, serviceAccountUser)
		}

		// Allowed: list and watch Nodes (what the agent's informer does).
		list, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list nodes with the token: %v", err)
		}
		w, err := sa.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatalf("watch nodes with the token: %v", err)
		}
		defer w.Stop()
		probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"10.222.99.0/24"}}}
		if _, err := admin.CoreV1().Nodes().Create(ctx, probe, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer admin.CoreV1().Nodes().Delete(context.Background(), probe.Name, metav1.DeleteOptions{})
		select {
		case ev := <-w.ResultChan():
			if n, ok := ev.Object.(*corev1.Node); ev.Type != watch.Added || !ok || n.Name != probe.Name {
				t.Errorf("watch: got %s %T, want ADDED of node %s", ev.Type, ev.Object, probe.Name)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("watch: no event 15s after a Node was created")
		}
		if _, err := sa.CoreV1().Nodes().Get(ctx, probe.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("get node with the token: %v", err)
		}

		// Refused: Secrets, writes to Nodes, anything else.
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe", Namespace: namespace}, StringData: map[string]string{"k": "v"}}
		if _, err := admin.CoreV1().Secrets(namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what string
			do   func() error
		}{
			{"get secret kube-system/rbac-probe", func() error {
				_, err := sa.CoreV1().Secrets(namespace).Get(ctx, secret.Name, metav1.GetOptions{})
				return err
			}},
			{"list secrets in all namespaces", func() error {
				_, err := sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
				return err
			}},
			{"patch node", func() error {
				_, err := sa.CoreV1().Nodes().Patch(ctx, probe.Name, types.MergePatchType,
					[]byte(`{"metadata":{"labels":{"noderoute.io/probe":"x"}}}`), metav1.PatchOptions{})
				return err
			}},
			{"patch node status", func() error {
				_, err := sa.CoreV1().Nodes().Patch(ctx, probe.Name, types.MergePatchType,
					[]byte(`{"status":{"capacity":{"pods":"1"}}}`), metav1.PatchOptions{}, "status")
				return err
			}},
			{"create node", func() error {
				_, err := sa.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe-2"}}, metav1.CreateOptions{})
				return err
			}},
			{"delete node", func() error {
				return sa.CoreV1().Nodes().Delete(ctx, probe.Name, metav1.DeleteOptions{})
			}},
			{"get configmap kube-system/noderoute-agent", func() error {
				_, err := sa.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
				return err
			}},
			{"list pods", func() error {
				_, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
				return err
			}},
		} {
			err := c.do()
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s with the token: %v, want 403 Forbidden", c.what, err)
				continue
			}
			t.Logf("%s: %v", c.what, err)
		}
		// The Node was not changed by the refused patch.
		n, err := admin.CoreV1().Nodes().Get(ctx, probe.Name, metav1.GetOptions{})
		if err != nil || n.Labels["noderoute.io/probe"] != "" {
			t.Errorf("node %s after the refused patch: %v %v", probe.Name, err, n.Labels)
		}
	})
}
