package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// benchLabel marks the Nodes nrbench creates.
const benchLabel = "noderoute.io/bench"

func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	// No client-side rate limit: the point is to create Nodes fast.
	cfg.QPS = 1e6
	cfg.Burst = 1e6
	cfg.UserAgent = "nrbench"
	return kubernetes.NewForConfig(cfg)
}

func benchNode(i int) *corev1.Node {
	cidr, _ := cidrOf(i)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   nodeName(i),
			Labels: map[string]string{benchLabel: "true"},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr.String(), PodCIDRs: []string{cidr.String()}},
	}
}

func runCreate(args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	start := fs.Int("start", 0, "first index i of bench-<i>")
	count := fs.Int("count", 1000, "number of Nodes")
	workers := fs.Int("workers", 16, "concurrent Create calls")
	netnsPath := fs.String("route-netns", "", "network namespace (path) whose routes to wait for; empty: do not wait")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkRange(*start, *count); err != nil {
		return err
	}
	client, err := kubeClient(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	begin := time.Now()
	next := int64(*start)
	end := int64(*start + *count)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= end || ctx.Err() != nil {
					return
				}
				_, err := client.CoreV1().Nodes().Create(ctx, benchNode(int(i)), metav1.CreateOptions{})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	created := time.Since(begin)
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d Creates failed, first: %v", n, firstErr.Load())
	}
	note("created %d Nodes in %s (%d workers)", *count, created.Round(time.Millisecond), *workers)
	result("create_count", *count)
	result("create_workers", *workers)
	result("create_seconds", created.Seconds())
	result("create_per_second", float64(*count)/created.Seconds())
	if *netnsPath == "" {
		return nil
	}

	// Wait until every route is in the namespace (the running agent
	// follows the Creates), sampling the table every 100 ms.
	h, err := routeHandle(*netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	want := make([]string, 0, *count)
	for i := *start; i < *start+*count; i++ {
		c, _ := cidrOf(i)
		want = append(want, c.String())
	}
	for {
		have, interrupted, err := ourRoutes(h)
		if err != nil {
			return err
		}
		if !interrupted {
			missing := 0
			for _, w := range want {
				if !have[w] {
					missing++
				}
			}
			if missing == 0 {
				all := time.Since(begin)
				note("all %d routes present %s after the first Create", *count, all.Round(time.Millisecond))
				result("create_routes_seconds", all.Seconds())
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("routes of the %d Nodes not all present after %s", *count, *timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
