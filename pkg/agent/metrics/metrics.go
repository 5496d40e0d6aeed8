// Package metrics holds the agent's Prometheus metrics and the HTTP server
// for /metrics, /healthz and /readyz.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/noderoute/noderoute/pkg/agent/noderoute"
	"github.com/noderoute/noderoute/pkg/version"
)

// Namespace prefixes every metric of the agent.
const Namespace = "noderoute"

// syncTypes are the values of the "sync" label.
var syncTypes = []noderoute.SyncType{noderoute.SyncNode, noderoute.SyncFull, noderoute.SyncResync, noderoute.SyncRepair}

// The values of the "watcher" label of noderoute_watcher_running: the
// netlink watchers of the drift repair (agent.StartDriftRepair).
const (
	// WatcherRoutes is route.WatchRoutes: routes of ours deleted or
	// replaced by hand.
	WatcherRoutes = "routes"
	// WatcherGatewayInterface is route.WatchLinkUp on the gateway
	// interface: it coming back up after a flap.
	WatcherGatewayInterface = "gateway_interface"
)

// Watchers lists the values of the "watcher" label.
var Watchers = []string{WatcherRoutes, WatcherGatewayInterface}

// Sources are where the gauges read their values. Each may be nil until the
// part of the agent behind it exists; a nil source reads as 0 (not
// connected, not ready).
type Sources struct {
	// Stats returns the controller's counts.
	Stats func() noderoute.Stats
	// OVSConnected reports whether the OpenFlow connection is up.
	OVSConnected func() bool
	// FullSyncDone is closed once the first full sync is over.
	FullSyncDone <-chan struct{}
}

// Metrics is the agent's registry and the collectors in it. It implements
// noderoute.Observer.
type Metrics struct {
	registry     *prometheus.Registry
	syncDuration *prometheus.HistogramVec
	syncErrors   *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	lastFullSync prometheus.Gauge
	watcherUp    *prometheus.GaugeVec

	mu      sync.Mutex
	sources Sources
}

var (
	_ noderoute.Observer       = (*Metrics)(nil)
	_ noderoute.RejectObserver = (*Metrics)(nil)
)

// New returns the agent's metrics in a registry of their own, with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "sync_duration_seconds",
		Help:      "Duration of syncs: sync=node is one Node, sync=full one attempt at the first full sync (every Node and the clean-up), sync=resync one periodic route reconciliation, sync=repair one route reconciliation on request (a route of ours deleted or replaced, the gateway interface re-created).",
		// 1 ms to 60 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	}, []string{"sync"})
	m.syncErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "sync_errors_total",
		Help:      "Failed syncs, by sync (node, full, resync) and kind of error (flows: OVS; routes: netlink; node_cache: informer cache; partial: a full sync in which some Nodes failed; other).",
	}, []string{"sync", "kind"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "pod_cidrs_rejected_total",
		Help:      "Pod CIDRs of remote Nodes refused, by kind (malformed, prefix_length: /0 or too long, address_family: a family this node has no pod CIDR of, overlaps_local, overlaps_remote). Counted when a refusal appears, not at every sync.",
	}, []string{"kind"})
	m.lastFullSync = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "last_full_sync_timestamp_seconds",
		Help:      "Unix time of the last successful full pass: the first full sync, then every periodic route reconciliation (--resync-period). 0 before the first.",
	})
	m.watcherUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "watcher_running",
		Help:      "1 while the watcher's netlink subscription is in place, else 0 (not started yet, failed and retrying, or given up; the log says why): watcher=routes sees routes of ours deleted or replaced by hand, watcher=gateway_interface the gateway interface coming back up. While it is 0, such changes wait for the periodic resync (--resync-period).",
	}, []string{"watcher"})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   Namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels tell the agent's version and commit.",
		ConstLabels: prometheus.Labels{"version": version.Version, "commit": version.Commit},
	})
	buildInfo.Set(1)
	gauge := func(name, help string, value func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, value)
	}
	stat := func(pick func(noderoute.Stats) int) func() float64 {
		return func() float64 {
			src := m.currentSources().Stats
			if src == nil {
				return 0
			}
			return float64(pick(src()))
		}
	}
	m.registry.MustRegister(
		m.syncDuration, m.syncErrors, m.rejected, m.lastFullSync, m.watcherUp, buildInfo,
		gauge("nodes_seen", "Node objects in the agent's informer cache, its own included.",
			stat(func(s noderoute.Stats) int { return s.NodesSeen })),
		gauge("remote_nodes", "Remote Nodes with flows and routes installed.",
			stat(func(s noderoute.Stats) int { return s.RemoteNodes })),
		gauge("flows_installed", "ARP and NDP responder flows installed (one per remote pod CIDR: ARP for IPv4, NDP for IPv6; the base flows are not counted).",
			stat(func(s noderoute.Stats) int { return s.ArpResponderFlows + s.NdpResponderFlows })),
		gauge("routes_installed", "Routes to remote pod CIDRs installed (protocol 94, both address families).",
			stat(func(s noderoute.Stats) int { return s.Routes })),
		gauge("ovs_connected", "1 while the OpenFlow connection to the bridge is up, else 0.",
			func() float64 {
				if m.ovsConnected() {
					return 1
				}
				return 0
			}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Zero series for every label pair, so that rate() and alerts see
	// them before the first error.
	for _, kind := range noderoute.RejectKinds {
		m.rejected.WithLabelValues(kind)
	}
	for _, w := range Watchers {
		m.watcherUp.WithLabelValues(w)
	}
	for _, s := range syncTypes {
		m.syncDuration.WithLabelValues(string(s))
		for _, kind := range noderoute.ErrorKinds {
			m.syncErrors.WithLabelValues(string(s), kind)
		}
	}
	return m
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// SetSources replaces the gauges' sources.
func (m *Metrics) SetSources(s Sources) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = s
}

func (m *Metrics) currentSources() Sources {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sources
}

func (m *Metrics) ovsConnected() bool {
	f := m.currentSources().OVSConnected
	return f != nil && f()
}

func (m *Metrics) ready() bool {
	ch := m.currentSources().FullSyncDone
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ObserveSync implements noderoute.Observer.
func (m *Metrics) ObserveSync(sync noderoute.SyncType, d time.Duration, err error) {
	m.syncDuration.WithLabelValues(string(sync)).Observe(d.Seconds())
	if err != nil {
		m.syncErrors.WithLabelValues(string(sync), noderoute.ErrorKind(err)).Inc()
		return
	}
	if sync == noderoute.SyncFull || sync == noderoute.SyncResync {
		m.lastFullSync.SetToCurrentTime()
	}
}

// ObserveRejectedCIDR implements noderoute.RejectObserver.
func (m *Metrics) ObserveRejectedCIDR(kind string) {
	m.rejected.WithLabelValues(kind).Inc()
}

// SetWatcherRunning sets noderoute_watcher_running for watcher (one of
// Watchers): whether its subscription is in place.
func (m *Metrics) SetWatcherRunning(watcher string, running bool) {
	v := 0.0
	if running {
		v = 1
	}
	m.watcherUp.WithLabelValues(watcher).Set(v)
}

// Handler serves /metrics, /healthz (200 while the OpenFlow connection is
// up, else 503) and /readyz (200 once the first full sync is done, else
// 503).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: errorLogger{}}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ovsConnected() {
			http.Error(w, "not connected to OVS", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !m.ready() {
			http.Error(w, "first full sync not done", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

type errorLogger struct{}

func (errorLogger) Println(v ...interface{}) { klog.ErrorS(nil, fmt.Sprint(v...), "server", "metrics") }

// Server is the running HTTP server of the metrics.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// Enabled reports whether a --metrics-bind-address value turns the server
// on: "" and "0" turn it off.
func Enabled(bindAddress string) bool {
	return bindAddress != "" && bindAddress != "0"
}

// Serve listens on bindAddress (host:port) and serves Handler in the
// background. Listening errors (address in use) are returned here, so that
// the agent fails at start instead of running unobserved.
func (m *Metrics) Serve(bindAddress string) (*Server, error) {
	l, err := net.Listen("tcp", bindAddress)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", bindAddress, err)
	}
	s := &Server{
		srv:  &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second},
		addr: l.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Metrics server stopped", "address", s.addr)
		}
	}()
	klog.InfoS("Serving metrics and health checks", "address", s.addr, "paths", []string{"/metrics", "/healthz", "/readyz"})
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops the server, waiting up to a few seconds for requests in
// flight.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}
