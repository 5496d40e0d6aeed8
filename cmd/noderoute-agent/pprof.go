//go:build pprof

package main

// Heap and CPU profiles for the benchmark (hack/bench.sh with
// BENCH_HEAP_PROFILE=1 builds the agent with -tags pprof). The shipped agent
// has no profiling endpoint: this file is not in its build.

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"

	"k8s.io/klog/v2"
)

func init() {
	addr := os.Getenv("NODEROUTE_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		klog.InfoS("Serving /debug/pprof/ (benchmark build)", "address", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			klog.ErrorS(err, "pprof server stopped", "address", addr)
		}
	}()
}
