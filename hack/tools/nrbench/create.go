package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	// As the agent and kubelets do: the API server's share of the
	// machine stays what it is on a real cluster.
	cfg.ContentType = runtime.ContentTypeProtobuf
	return kubernetes.NewForConfig(cfg)
}

// bulkFlags are the flags create and delete share.
type bulkFlags struct {
	kubeconfig, netnsPath, mgmt, prefix string
	start, count, workers               int
	timeout, poll                       time.Duration
}

func (b *bulkFlags) register(fs *flag.FlagSet, verb string) {
	fs.StringVar(&b.kubeconfig, "kubeconfig", "", "admin kubeconfig")
	fs.IntVar(&b.start, "start", 0, "first index i of bench-<i>")
	fs.IntVar(&b.count, "count", 1000, "number of Nodes")
	fs.IntVar(&b.workers, "workers", 16, "concurrent "+verb+" calls")
	fs.StringVar(&b.netnsPath, "route-netns", "", "network namespace (path) whose routes to wait for; empty: do not wait")
	fs.StringVar(&b.mgmt, "ovs-mgmt", "", "the bridge's OpenFlow management socket: if set, also check the responder flows once the routes are done")
	fs.DurationVar(&b.poll, "poll", 10*time.Millisecond, "route polling interval while waiting")
	fs.DurationVar(&b.timeout, "timeout", 10*time.Minute, "bound on the whole command")
	fs.StringVar(&b.prefix, "prefix", verb, "prefix of the result keys")
}

func runCreate(args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	var b bulkFlags
	b.register(fs, "create")
	shapeFlag := fs.String("shape", string(shapeRealistic), "what the Nodes carry: realistic (as a kubelet writes them, about 10 KB of JSON) or minimal (name, label, pod CIDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	shape, err := parseNodeShape(*shapeFlag)
	if err != nil {
		return err
	}
	result(b.prefix+"_shape", shape)
	return b.run(true, func(ctx context.Context, client kubernetes.Interface, i int) error {
		_, err := client.CoreV1().Nodes().Create(ctx, benchNode(i, shape), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

func runDelete(args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	var b bulkFlags
	b.register(fs, "delete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return b.run(false, func(ctx context.Context, client kubernetes.Interface, i int) error {
		err := client.CoreV1().Nodes().Delete(ctx, nodeName(i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// run calls op for every Node concurrently, then waits until every route is
// there (present) or gone, and reports both from the first call and from the
// last call's return: a burst is programmed "after the last call is
// acknowledged".
func (b *bulkFlags) run(present bool, op func(context.Context, kubernetes.Interface, int) error) error {
	if err := checkRange(b.start, b.count); err != nil {
		return err
	}
	client, err := kubeClient(b.kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()

	begin := time.Now()
	lastAck, err := b.concurrently(ctx, func(i int) error { return op(ctx, client, i) })
	if err != nil {
		return err
	}
	calls := time.Since(begin)
	note("%s: %d Nodes in %s (%d workers)", b.prefix, b.count, calls.Round(time.Millisecond), b.workers)
	result(b.prefix+"_count", b.count)
	result(b.prefix+"_workers", b.workers)
	result(b.prefix+"_seconds", calls.Seconds())
	result(b.prefix+"_per_second", float64(b.count)/calls.Seconds())
	if b.netnsPath == "" {
		return nil
	}

	h, err := routeHandle(b.netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	want := make([]string, 0, b.count)
	for i := b.start; i < b.start+b.count; i++ {
		c, _ := cidrOf(i)
		want = append(want, c.String())
	}
	for {
		have, interrupted, err := ourRoutes(h)
		if err != nil {
			return err
		}
		if !interrupted && routesDone(want, have, present) {
			now := time.Now()
			note("%s: all %d routes done %s after the first call, %s after the last one returned", b.prefix, b.count,
				now.Sub(begin).Round(time.Millisecond), now.Sub(lastAck).Round(time.Millisecond))
			result(b.prefix+"_routes_seconds", now.Sub(begin).Seconds())
			result(b.prefix+"_routes_after_last_ack_seconds", now.Sub(lastAck).Seconds())
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: routes of the %d Nodes not all done after %s", b.prefix, b.count, b.timeout)
		case <-time.After(b.poll):
		}
	}
	if b.mgmt == "" {
		return nil
	}
	// The agent installs a Node's responder before its route and removes
	// it before the route: once the routes are done, so must the flows be.
	flows, err := dumpResponders(ctx, b.mgmt)
	if err != nil {
		return err
	}
	wrong := 0
	for i := b.start; i < b.start+b.count; i++ {
		if _, gw := cidrOf(i); flows[gw.String()] != present {
			wrong++
		}
	}
	result(b.prefix+"_flows_not_done_when_routes_done", wrong)
	return nil
}

// concurrently runs op(i) for every index on b.workers goroutines and
// returns when the last call returned.
func (b *bulkFlags) concurrently(ctx context.Context, op func(i int) error) (time.Time, error) {
	next := int64(b.start)
	end := int64(b.start + b.count)
	var failed, lastAck atomic.Int64
	var firstErr firstError
	var wg sync.WaitGroup
	for w := 0; w < b.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= end || ctx.Err() != nil {
					return
				}
				if err := op(int(i)); err != nil {
					failed.Add(1)
					firstErr.set(err)
				}
				storeMax(&lastAck, time.Now().UnixNano())
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return time.Time{}, fmt.Errorf("%s: %d of %d calls failed, first: %v", b.prefix, n, b.count, firstErr.get())
	}
	return time.Unix(0, lastAck.Load()), nil
}

// routesDone reports whether every route of want is in have (present) or
// none is.
func routesDone(want []string, have map[string]bool, present bool) bool {
	for _, w := range want {
		if have[w] != present {
			return false
		}
	}
	return true
}

// storeMax sets v to x if x is larger.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}
