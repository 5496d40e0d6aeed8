package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The agent asks for protobuf (cheaper to decode than JSON) without gzip,
// and still takes JSON from a server that answers only that.
func TestKubeClientAsksForProtobuf(t *testing.T) {
	var mu sync.Mutex
	var accept, encoding string
	// TLS as every real API server: client-go ignores DisableCompression
	// on a plain-HTTP connection.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accept = r.Header.Get("Accept")
		encoding = r.Header.Get("Accept-Encoding")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"worker2"}}]}`))
	}))
	defer srv.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := kubeClient(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list Nodes from a JSON-only server: %v", err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "worker2" {
		t.Errorf("got %+v, want the one Node worker2", nodes.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(accept, "application/vnd.kubernetes.protobuf") || !strings.Contains(accept, "application/json") {
		t.Errorf("Accept: %q, want protobuf first, then JSON", accept)
	}
	if strings.Contains(encoding, "gzip") {
		t.Errorf("Accept-Encoding: %q, want no gzip", encoding)
	}
}
