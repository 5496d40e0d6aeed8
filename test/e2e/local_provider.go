//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/noderoute/noderoute/pkg/pidfile"
	"github.com/noderoute/noderoute/test/framework/localcluster"
)

// localProvider drives the cluster of network namespaces made by
// hack/local-cluster.sh: each node a netns with its own OVS and agent, the
// API server in a namespace of its own.
type localProvider struct {
	script string
	name   string
	nodes  []string
	layout localcluster.Layout
}

// newLocalProvider brings a cluster up (hack/local-cluster.sh up) with pod
// CIDRs of the given IP family (ipv4, ipv6 or dual) and returns a cleanup
// that tears it down unless keep is set.
func newLocalProvider(name string, nodes int, family string, keep bool) (Provider, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("the local provider needs root (network namespaces, OVS)")
	}
	layout, err := localcluster.New(repoRoot(), name)
	if err != nil {
		return nil, nil, err
	}
	p := &localProvider{script: filepath.Join(repoRoot(), "hack", "local-cluster.sh"), name: name, layout: layout}
	for i := 0; i < nodes; i++ {
		if i == 0 {
			p.nodes = append(p.nodes, "master")
		} else {
			p.nodes = append(p.nodes, fmt.Sprintf("worker%d", i))
		}
	}
	cleanup := func() {
		if keep {
			fmt.Fprintf(os.Stderr, "e2e: cluster %s left up; tear down with: hack/local-cluster.sh down --name %s\n", name, name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := p.run(ctx, "", "down", "--name", name); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: down: %v\n%s\n", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	familyFlag := map[string]string{"ipv4": "--ipv4", "ipv6": "--ipv6", "dual": "--dual-stack"}[family]
	if familyFlag == "" {
		return nil, nil, fmt.Errorf("IP family %q: want ipv4, ipv6 or dual", family)
	}
	if out, err := p.run(ctx, "", "up", "--name", name, "--nodes", fmt.Sprint(nodes), familyFlag); err != nil {
		return nil, cleanup, fmt.Errorf("hack/local-cluster.sh up: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: local cluster %s with %d nodes (%s) up in %s\n", name, nodes, family, time.Since(start).Round(time.Millisecond))
	return p, cleanup, nil
}

func (p *localProvider) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.script, args...)
	cmd.Dir = repoRoot()
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (p *localProvider) Nodes() []string { return p.nodes }

// netNS is the path of the namespace holding etcd and the API server.
func (p *localProvider) netNS() string { return localcluster.NetNSPath(p.layout.NetNS()) }

// dialInNetNS opens a connection from inside the network namespace at
// nsPath: the socket is created by a thread that entered the namespace (a
// socket stays in the namespace it was created in), and the thread goes
// back to its own namespace before anything else runs on it. Should going
// back fail, the goroutine ends still locked to the thread, which the
// runtime then never reuses. (Going back matters even then: the thread
// may be the process's main thread, which the runtime cannot end, and
// whose namespace is the one `ip netns pids` reports for the process; the
// local cluster's down stops every process it finds in the cluster's
// namespaces.)
func dialInNetNS(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("current network namespace: %w", err)}
			return
		}
		defer own.Close()
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			if netns.Set(own) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{nil, fmt.Errorf("enter network namespace %s: %w", nsPath, err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if netns.Set(own) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// Clientset: the admin kubeconfig, dialling from <name>-net (the API server
// is not reachable from the root namespace). No client-side rate limit:
// cases use it to make many calls at once.
func (p *localProvider) Clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", p.layout.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.UserAgent = "noderoute-e2e"
	nsPath := p.netNS()
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialInNetNS(ctx, nsPath, network, addr)
	}
	return kubernetes.NewForConfig(cfg)
}

// agentPID is the pid in the node's agent.pid, if that process is alive.
func (p *localProvider) agentPID(node string) (int, error) {
	path := p.layout.AgentPidFile(node)
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("agent of %s: %w", node, err)
	}
	pid, err := pidfile.Read(path)
	if err != nil || pid == 0 {
		return 0, fmt.Errorf("agent of %s: pidfile %s: no pid (%v)", node, path, err)
	}
	if !pidfile.Alive(pid) {
		return 0, fmt.Errorf("agent of %s (pid %d) is not running", node, pid)
	}
	return pid, nil
}

// AgentID: the agent's pid and its start time (field 22 of /proc/<pid>/stat,
// in clock ticks since boot), so that a reused pid is not taken for the
// same process.
func (p *localProvider) AgentID(_ context.Context, node string) (string, error) {
	pid, err := p.agentPID(node)
	if err != nil {
		return "", err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", fmt.Errorf("agent of %s (pid %d) is not running", node, pid)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("agent of %s: short /proc/%d/stat", node, pid)
	}
	return fmt.Sprintf("pid %d started at tick %s", pid, f[19]), nil
}

func (p *localProvider) AgentStatus(node string) (map[string]string, error) {
	pid, err := p.agentPID(node)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	return parseProcStatus(string(b)), nil
}

func (p *localProvider) AgentSocket(node string) string {
	return p.layout.AgentSocket(node)
}

// AgentLog: the node's agent.log after the last line start_daemon
// (hack/lib/local-cluster-util.sh) writes before starting an agent; the
// file holds every agent the node has had.
func (p *localProvider) AgentLog(_ context.Context, node string) (string, error) {
	b, err := os.ReadFile(p.layout.AgentLog(node))
	if err != nil {
		return "", fmt.Errorf("log of the agent of %s: %w", node, err)
	}
	const marker = "==== "
	l := string(b)
	if i := strings.LastIndex(l, "\n"+marker); i >= 0 {
		l = l[i+1:]
	} else if !strings.HasPrefix(l, marker) {
		return "", fmt.Errorf("log of the agent of %s: no start line %q", node, marker)
	}
	_, rest, _ := strings.Cut(l, "\n")
	return rest, nil
}

// AgentMetrics: the agent listens on 127.0.0.1:9475 of its node's
// namespace, where Exec runs curl.
func (p *localProvider) AgentMetrics(ctx context.Context, node string) (string, error) {
	out, err := p.Exec(ctx, node, "curl", "-sS", "--max-time", "10", "http://127.0.0.1:9475/metrics")
	if err != nil {
		return "", fmt.Errorf("metrics of the agent of %s: %w: %s", node, err, out)
	}
	return out, nil
}

func (p *localProvider) RestartAgentWithCaps(ctx context.Context, node, caps string) error {
	out, err := p.run(ctx, "", "restart-agent", "--name", p.name, node, "--caps", caps)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// ExecInterruptible is Exec, stopped with SIGINT when ctx is done. The
// process started is the command itself: hack/local-cluster.sh exec ends in
// exec ip netns exec ... env ... CMD, each replacing the one before.
func (p *localProvider) ExecInterruptible(ctx context.Context, node string, out io.Writer, cmd ...string) error {
	c := exec.Command(p.script, append([]string{"exec", "--name", p.name, node, "--"}, cmd...)...)
	c.Dir = repoRoot()
	c.Stdout, c.Stderr = out, out
	return runUntilDone(ctx, c, cmd[0], func() { _ = c.Process.Signal(os.Interrupt) })
}

// etcdKeyOfNode is where kube-apiserver stores a Node (its default
// --etcd-prefix /registry; Nodes have kept their old resource name,
// minions, in the key).
func etcdKeyOfNode(name string) string { return "/registry/minions/" + name }

// DeleteNodeBehindAPIServer starts etcd alone (kube-apiserver stays down)
// and deletes the Node's key through etcd's JSON gateway (POST
// /v3/kv/deleterange, keys base64), dialling from <name>-net, where etcd
// listens on localcluster.EtcdClientURL. etcd stays up; StartAPIServer then starts
// kube-apiserver only.
func (p *localProvider) DeleteNodeBehindAPIServer(ctx context.Context, name string) error {
	if out, err := p.run(ctx, "", "start-api", "--name", p.name, "--etcd-only"); err != nil {
		return fmt.Errorf("start etcd alone: %w: %s", err, out)
	}
	nsPath := p.netNS()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialInNetNS(ctx, nsPath, network, addr)
		},
	}}
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(etcdKeyOfNode(name)))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, localcluster.EtcdClientURL+"/v3/kv/deleterange", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("etcd deleterange %s: %w", etcdKeyOfNode(name), err)
	}
	defer resp.Body.Close()
	var answer struct {
		Deleted string `json:"deleted"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd deleterange %s: HTTP %d, %v", etcdKeyOfNode(name), resp.StatusCode, err)
	}
	if answer.Deleted != "1" {
		return fmt.Errorf("etcd deleterange %s deleted %q keys, want 1", etcdKeyOfNode(name), answer.Deleted)
	}
	return nil
}

func (p *localProvider) Kubectl(ctx context.Context, args ...string) (string, error) {
	return p.run(ctx, "", append([]string{"kubectl", "--name", p.name, "--"}, args...)...)
}

func (p *localProvider) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	return p.run(ctx, stdin, append([]string{"kubectl", "--name", p.name, "--"}, args...)...)
}

func (p *localProvider) Exec(ctx context.Context, node string, cmd ...string) (string, error) {
	return p.run(ctx, "", append([]string{"exec", "--name", p.name, node, "--"}, cmd...)...)
}

func (p *localProvider) RestartAgent(ctx context.Context, node string, kill bool) error {
	args := []string{"restart-agent", "--name", p.name, node}
	if kill {
		args = append(args, "--kill")
	}
	out, err := p.run(ctx, "", args...)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// StopAgent implements agentStopper.
func (p *localProvider) StopAgent(ctx context.Context, node string) error {
	out, err := p.run(ctx, "", "stop-agent", "--name", p.name, node)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// OVSRunDir implements agentStopper.
func (p *localProvider) OVSRunDir(node string) string {
	return p.layout.OVSDir(node)
}

func (p *localProvider) StopAPIServer(ctx context.Context) error {
	if out, err := p.run(ctx, "", "stop-api", "--name", p.name); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func (p *localProvider) StartAPIServer(ctx context.Context) error {
	if out, err := p.run(ctx, "", "start-api", "--name", p.name); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
