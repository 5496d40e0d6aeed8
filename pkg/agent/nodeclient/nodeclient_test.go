package nodeclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

// jsonOnlyServer answers a Node list and a watch with one ADDED event, in
// JSON, as an API server would to a client that accepts JSON.
func jsonOnlyServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			_, _ = w.Write([]byte(`{"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"worker2","resourceVersion":"2"},"spec":{"podCIDRs":["10.222.2.0/24"]}}}` + "\n"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = w.Write([]byte(`{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"master","resourceVersion":"1"},"spec":{"podCIDRs":["10.222.0.0/24"]}}]}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// listOnly declares that its server cannot stream the initial state, so
// that the informer lists first, as it does against older API servers.
type listOnly struct{ *Client }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

func TestInformerListsAndWatches(t *testing.T) {
	srv := jsonOnlyServer(t)
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	inf := NewInformer(listOnly{c})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Informer().RunWithContext(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		nodes, _ := inf.Lister().List(labels.Everything())
		if len(nodes) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache has %d Nodes after 10 s, want master (listed) and worker2 (watched)", len(nodes))
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := inf.Lister().Get("worker2")
	if err != nil || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != "10.222.2.0/24" {
		t.Errorf("worker2: %+v, %v", n, err)
	}
}

// The agent reads Nodes only: its binary must not carry client-go's
// clientset, which links and registers every built-in API group.
func TestAgentLinksCoreGroupOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/noderoute/noderoute/cmd/noderoute-agent").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "k8s.io/client-go/kubernetes" || (strings.HasPrefix(pkg, "k8s.io/api/") && pkg != "k8s.io/api/core/v1") {
			t.Errorf("noderoute-agent depends on %s", pkg)
		}
	}
}
