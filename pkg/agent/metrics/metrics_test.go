package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
	"github.com/noderoute/noderoute/pkg/route"
)

// seedNodes are the three-Node example cluster with worker1 and worker2
// dual-stack (worker2's IPv6 CIDR adds a route and an NDP responder flow),
// plus a Node "bad" whose CIDRs are both refused (an overlap, a malformed
// one).
func seedNodes() []runtime.Object {
	mk := func(name string, cidrs ...string) runtime.Object {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
	}
	return []runtime.Object{mk("master", "10.222.0.0/24"), mk("worker1", "10.222.1.0/24", "fd00:10:222:1::/64"), mk("worker2", "10.222.2.0/24", "fd00:10:222:2::/64"), mk("bad", "10.222.0.0/25", "bogus")}
}

// Scrape fetches url and parses the Prometheus text format.
func Scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// value returns the value of the metric of family name whose labels include
// labels (name=value pairs), failing the test if there is none.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf, ok := families[name]
	if !ok {
		t.Fatalf("metric %s not exposed", name)
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func status(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsAndProbesOfSeedCluster(t *testing.T) {
	m := New()
	srv, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr().String()

	// Before anything is wired: alive but not connected, not ready.
	if code, body := status(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before OVS: %d %q", code, body)
	}
	if code, _ := status(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before anything: %d", code)
	}

	client := fake.NewSimpleClientset(seedNodes()...)
	factory := informers.NewSharedInformerFactory(client, 0)
	routes := route.NewFake()
	ctrl, err := noderoute.NewController("worker1", factory.Core().V1().Nodes(), openflow.NewFake(), routes, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var connected atomic.Bool
	connected.Store(true)
	ctrl.SetObserver(m)
	m.SetSources(Sources{Stats: ctrl.Stats, OVSConnected: connected.Load, FullSyncDone: ctrl.FullSyncDone()})

	if code, body := status(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the first full sync: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	factory.Start(ctx.Done())
	go func() {
		defer close(done)
		if err := ctrl.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-ctrl.FullSyncDone():
	case <-time.After(10 * time.Second):
		t.Fatal("first full sync not done")
	}
	if code, body := status(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz after the first full sync: %d %q", code, body)
	}
	if code, body := status(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while connected: %d %q", code, body)
	}

	f := Scrape(t, base+"/metrics")
	for name, want := range map[string]float64{
		"noderoute_nodes_seen":       4,
		"noderoute_remote_nodes":     2,
		"noderoute_flows_installed":  3, // 2 ARP + 1 NDP
		"noderoute_routes_installed": 3,
		"noderoute_ovs_connected":    1,
		"noderoute_build_info":       1,
	} {
		if got := value(t, f, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, f, "noderoute_sync_duration_seconds", "sync", "full"); got != 1 {
		t.Errorf("full syncs observed: %v, want 1", got)
	}
	// 3 in the full sync, then again from the informer's add events.
	if got := value(t, f, "noderoute_sync_duration_seconds", "sync", "node"); got < 3 {
		t.Errorf("node syncs observed: %v, want at least 3", got)
	}
	if ts := value(t, f, "noderoute_last_full_sync_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last full sync timestamp %v is not recent", ts)
	}
	if got := value(t, f, "noderoute_sync_errors_total", "sync", "node", "kind", "routes"); got != 0 {
		t.Errorf("route errors before any failure: %v", got)
	}
	// "bad" overlaps master's CIDR and has a malformed one: each refusal
	// counted once, the other kinds present at 0.
	for kind, want := range map[string]float64{"overlaps_remote": 1, "malformed": 1, "prefix_length": 0, "address_family": 0, "overlaps_local": 0} {
		if got := value(t, f, "noderoute_pod_cidrs_rejected_total", "kind", kind); got != want {
			t.Errorf("pod_cidrs_rejected_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}

	// A failing netlink dump shows up as a route error of the periodic
	// resync, and a lost connection on /healthz and the gauge.
	routes.InjectNext(errors.New("injected netlink failure"))
	deadline := time.Now().Add(5 * time.Second)
	for value(t, Scrape(t, base+"/metrics"), "noderoute_sync_errors_total", "sync", "resync", "kind", "routes") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("failed periodic resync not counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	connected.Store(false)
	if code, _ := status(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz while disconnected: %d", code)
	}
	if got := value(t, Scrape(t, base+"/metrics"), "noderoute_ovs_connected"); got != 0 {
		t.Errorf("ovs_connected while disconnected = %v", got)
	}
}

func TestObserveSyncCountsErrorsByKind(t *testing.T) {
	m := New()
	m.ObserveSync(noderoute.SyncNode, time.Millisecond, fmt.Errorf("plain"))
	m.ObserveSync(noderoute.SyncResync, time.Millisecond, nil)
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}
	if got := value(t, byName, "noderoute_sync_errors_total", "sync", "node", "kind", "other"); got != 1 {
		t.Errorf("other errors = %v", got)
	}
	if got := value(t, byName, "noderoute_last_full_sync_timestamp_seconds"); got == 0 {
		t.Error("successful resync did not set the timestamp")
	}
}

func TestEnabled(t *testing.T) {
	for addr, want := range map[string]bool{"": false, "0": false, "127.0.0.1:9475": true, ":9475": true} {
		if Enabled(addr) != want {
			t.Errorf("Enabled(%q) = %v", addr, !want)
		}
	}
}

// Every watcher has its series from the start, at 0 until told otherwise,
// and each follows its own reports.
func TestWatcherRunning(t *testing.T) {
	m := New()
	gather := func() map[string]*dto.MetricFamily {
		families, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*dto.MetricFamily{}
		for _, f := range families {
			byName[f.GetName()] = f
		}
		return byName
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		f := gather()
		if n := len(f["noderoute_watcher_running"].GetMetric()); n != len(Watchers) {
			t.Errorf("%s: %d watcher_running series, want %d", when, n, len(Watchers))
		}
		for w, v := range want {
			if got := value(t, f, "noderoute_watcher_running", "watcher", w); got != v {
				t.Errorf("%s: watcher_running{watcher=%q} = %v, want %v", when, w, got, v)
			}
		}
	}
	check("before any report", map[string]float64{WatcherRoutes: 0, WatcherGatewayInterface: 0})
	m.SetWatcherRunning(WatcherRoutes, true)
	m.SetWatcherRunning(WatcherGatewayInterface, true)
	check("both running", map[string]float64{WatcherRoutes: 1, WatcherGatewayInterface: 1})
	m.SetWatcherRunning(WatcherGatewayInterface, false)
	check("gateway interface watcher failed", map[string]float64{WatcherRoutes: 1, WatcherGatewayInterface: 0})
}
