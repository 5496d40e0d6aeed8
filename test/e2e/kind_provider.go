//go:build e2e

package e2e

// The kind provider runs the suite against the cluster of `make kind-up`
// (hack/kind-e2e.sh): kind node containers with real kubelets and
// containerd, noderoute deployed as its DaemonSet (deploy/overlays/kind-e2e).
// `make test-kind` runs it; the README and docs/install.md say what that run
// showed.
//
// Everything that reads or probes a node goes through its node container
// (docker exec), never through the API server, so that it keeps working
// while the API server is down: ip, ping and arping run in the node
// container (the pod uses the node's network namespace); ovs-ofctl,
// ovs-vsctl, ovs-appctl and agentctl, which only the noderoute image
// holds, run in the agent container through the node's own containerd
// (crictl exec).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type kindProvider struct {
	cluster    string
	kubeconfig string
	kubectl    string
	nodes      []string
}

// inAgentContainer: the commands only the noderoute image holds.
var inAgentContainer = map[string]bool{"ovs-ofctl": true, "ovs-vsctl": true, "ovs-appctl": true, "agentctl": true}

func newKindProvider() (Provider, func(), error) {
	p := &kindProvider{
		cluster:    os.Getenv("KIND_CLUSTER_NAME"),
		kubeconfig: os.Getenv("KUBECONFIG"),
		kubectl:    filepath.Join(repoRoot(), "_output", "bin", "kubectl"),
	}
	if p.cluster == "" {
		p.cluster = "noderoute"
	}
	if p.kubeconfig == "" {
		p.kubeconfig = filepath.Join(repoRoot(), "_output", "kind", "kubeconfig")
	}
	if _, err := os.Stat(p.kubectl); err != nil {
		p.kubectl = "kubectl"
	}
	out, err := p.Kubectl(context.Background(), "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes of kind cluster %s (kubeconfig %s; make kind-up first): %w: %s", p.cluster, p.kubeconfig, err, out)
	}
	p.nodes = strings.Fields(out)
	return p, func() {}, nil
}

func (p *kindProvider) Nodes() []string { return p.nodes }

func run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (p *kindProvider) kubectlArgs(args []string) []string {
	return append([]string{"--kubeconfig", p.kubeconfig, "--context", "kind-" + p.cluster}, args...)
}

func (p *kindProvider) Kubectl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "", p.kubectl, p.kubectlArgs(args)...)
}

func (p *kindProvider) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	return run(ctx, stdin, p.kubectl, p.kubectlArgs(args)...)
}

func (p *kindProvider) Clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: p.kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: "kind-" + p.cluster}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.UserAgent = "noderoute-e2e"
	return kubernetes.NewForConfig(cfg)
}

// agentContainerScript runs "$@" in the node's running agent container.
// Exit status 125: no agent container runs there.
const agentContainerScript = `id=$(crictl ps -q --state running --label io.kubernetes.pod.namespace=kube-system --label io.kubernetes.container.name=agent | head -n 1)
[ -n "$id" ] || { echo "no running agent container on this node" >&2; exit 125; }
exec crictl exec "$id" "$@"`

// nodeCommand is the docker command line that runs cmd on node.
func nodeCommand(node string, cmd []string) []string {
	if len(cmd) > 0 && inAgentContainer[cmd[0]] {
		return append([]string{"exec", node, "sh", "-c", agentContainerScript, "sh"}, cmd...)
	}
	return append([]string{"exec", node}, cmd...)
}

func (p *kindProvider) Exec(ctx context.Context, node string, cmd ...string) (string, error) {
	return run(ctx, "", "docker", nodeCommand(node, cmd)...)
}

// AgentExec runs cmd in node's agent pod as an operator does: kubectl exec.
func (p *kindProvider) AgentExec(ctx context.Context, node string, cmd ...string) (string, error) {
	pod, err := p.agentPod(ctx, node)
	if err != nil {
		return "", err
	}
	return p.Kubectl(ctx, append([]string{"-n", "kube-system", "exec", pod, "-c", "agent", "--"}, cmd...)...)
}

// ExecInterruptible runs cmd in the node container and, when ctx is done,
// sends it SIGINT from inside the node (docker exec does not pass signals
// on), through the pid it wrote to a file of its own.
func (p *kindProvider) ExecInterruptible(ctx context.Context, node string, out io.Writer, cmd ...string) error {
	pidfile := fmt.Sprintf("/run/e2e-exec-%d.pid", time.Now().UnixNano())
	script := `echo $$ >"$0"; exec "$@"`
	c := exec.Command("docker", append([]string{"exec", node, "sh", "-c", script, pidfile}, cmd...)...)
	c.Stdout, c.Stderr = out, out
	defer func() { _, _ = run(context.Background(), "", "docker", "exec", node, "rm", "-f", pidfile) }()
	return runUntilDone(ctx, c, cmd[0], func() {
		_, _ = run(context.Background(), "", "docker", "exec", node, "sh", "-c", `kill -INT "$(cat "$0")"`, pidfile)
	})
}

// AgentID is the ID of the agent container running on node, read from the
// node's containerd: a restart or a new pod gives another one.
func (p *kindProvider) AgentID(ctx context.Context, node string) (string, error) {
	out, err := run(ctx, "", "docker", "exec", node, "crictl", "ps", "-q", "--state", "running",
		"--label", "io.kubernetes.pod.namespace=kube-system", "--label", "io.kubernetes.container.name=agent")
	if err != nil || out == "" {
		return "", fmt.Errorf("no running agent container on %s: %v %s", node, err, out)
	}
	return strings.Fields(out)[0], nil
}

// agentPod returns the agent pod running on node.
func (p *kindProvider) agentPod(ctx context.Context, node string) (string, error) {
	out, err := p.Kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "app=noderoute-agent",
		"--field-selector", "spec.nodeName="+node, "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil || out == "" {
		return "", fmt.Errorf("no agent pod on %s: %v %s", node, err, out)
	}
	return strings.Fields(out)[0], nil
}

// RestartAgent signals the agent process from its node container; the
// kubelet restarts the container. (SIGKILL to a container's PID 1 from
// inside that container would be ignored.)
func (p *kindProvider) RestartAgent(ctx context.Context, node string, kill bool) error {
	before, err := p.AgentID(ctx, node)
	if err != nil {
		return err
	}
	sig := "-TERM"
	if kill {
		sig = "-KILL"
	}
	if out, err := run(ctx, "", "docker", "exec", node, "pkill", sig, "-x", "noderoute-agent"); err != nil {
		return fmt.Errorf("signal agent on %s: %w: %s", node, err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if after, err := p.AgentID(ctx, node); err == nil && after != before {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("agent container was not restarted within 2 minutes")
}

const stoppedManifests = "/etc/kubernetes/stopped"

// StopAPIServer moves the control plane's etcd and kube-apiserver static pod
// manifests away; the kubelet stops the pods.
func (p *kindProvider) StopAPIServer(ctx context.Context) error {
	cp := p.cluster + "-control-plane"
	if out, err := run(ctx, "", "docker", "exec", cp, "sh", "-c",
		"mkdir -p "+stoppedManifests+" && mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/etcd.yaml "+stoppedManifests+"/"); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := p.Kubectl(ctx, "get", "--raw", "/readyz", "--request-timeout=2s"); err != nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return errors.New("API server still answering 2 minutes after its manifest was moved away")
}

func (p *kindProvider) StartAPIServer(ctx context.Context) error {
	cp := p.cluster + "-control-plane"
	if out, err := run(ctx, "", "docker", "exec", cp, "sh", "-c", "mv "+stoppedManifests+"/*.yaml /etc/kubernetes/manifests/"); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := p.Kubectl(ctx, "get", "--raw", "/readyz", "--request-timeout=5s"); err == nil {
			return nil
		}
		time.Sleep(2 * time.Second)
	}
	return errors.New("API server not ready 3 minutes after its manifests came back")
}

// What only a cluster of real kubelets can have done to it (kind); the
// cases in kind_faults_test.go use it through nodeFaulter.

// containerID is the running container named name (agent, ovs) of the
// agent pod on node, from the node's containerd.
func (p *kindProvider) containerID(ctx context.Context, node, name string) (string, error) {
	out, err := run(ctx, "", "docker", "exec", node, "crictl", "ps", "-q", "--state", "running",
		"--label", "io.kubernetes.pod.namespace=kube-system", "--label", "io.kubernetes.container.name="+name)
	if err != nil || out == "" {
		return "", fmt.Errorf("no running %s container on %s: %v %s", name, node, err, out)
	}
	return strings.Fields(out)[0], nil
}

// agentPodReady tells whether node's agent pod is other than old and Ready.
func (p *kindProvider) agentPodReady(ctx context.Context, node, old string) bool {
	out, err := p.Kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "app=noderoute-agent",
		"--field-selector", "spec.nodeName="+node, "-o",
		`jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		// name, Ready status; a deletion timestamp makes three fields.
		if len(f) == 2 && f[0] != old && f[1] == "True" {
			return true
		}
	}
	return false
}

func (p *kindProvider) DeleteAgentPod(ctx context.Context, node string) error {
	pod, err := p.agentPod(ctx, node)
	if err != nil {
		return err
	}
	if out, err := p.Kubectl(ctx, "-n", "kube-system", "delete", "pod", pod, "--wait=false"); err != nil {
		return fmt.Errorf("delete pod %s: %w: %s", pod, err, out)
	}
	return poll(ctx, 2*time.Minute, "a new Ready agent pod on "+node, func() bool { return p.agentPodReady(ctx, node, pod) })
}

func (p *kindProvider) RollDaemonSet(ctx context.Context) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"e2e.noderoute.io/rolled-at":"%d"}}}}}`, time.Now().UnixNano())
	if out, err := p.Kubectl(ctx, "-n", "kube-system", "patch", "ds", "noderoute-agent", "--type=merge", "-p", patch); err != nil {
		return fmt.Errorf("patch the DaemonSet's pod template: %w: %s", err, out)
	}
	if out, err := p.Kubectl(ctx, "-n", "kube-system", "rollout", "status", "ds/noderoute-agent", "--timeout=5m"); err != nil {
		return fmt.Errorf("rollout: %w: %s", err, out)
	}
	return nil
}

func (p *kindProvider) KillVswitchd(ctx context.Context, node string) error {
	before, err := p.containerID(ctx, node, "ovs")
	if err != nil {
		return err
	}
	if out, err := run(ctx, "", "docker", "exec", node, "pkill", "-KILL", "-x", "ovs-vswitchd"); err != nil {
		return fmt.Errorf("kill ovs-vswitchd on %s: %w: %s", node, err, out)
	}
	return poll(ctx, 2*time.Minute, "the ovs container restarted on "+node, func() bool {
		id, err := p.containerID(ctx, node, "ovs")
		return err == nil && id != before
	})
}

// RestartNode restarts node's container as a reboot would and returns when
// its kubelet runs again.
func (p *kindProvider) RestartNode(ctx context.Context, node string) (kubeletBack time.Time, err error) {
	if out, err := run(ctx, "", "docker", "restart", node); err != nil {
		return time.Time{}, fmt.Errorf("docker restart %s: %w: %s", node, err, out)
	}
	err = poll(ctx, 3*time.Minute, "the kubelet of "+node+" active again", func() bool {
		out, err := run(ctx, "", "docker", "exec", node, "systemctl", "is-active", "kubelet")
		return err == nil && out == "active"
	})
	return time.Now(), err
}

// poll calls ok every 200 ms until it returns true or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no %s within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// AgentLog is the log of the agent container now running on node, from the
// node's containerd (so not the log of an earlier container of the pod).
func (p *kindProvider) AgentLog(ctx context.Context, node string) (string, error) {
	id, err := p.AgentID(ctx, node)
	if err != nil {
		return "", err
	}
	return run(ctx, "", "docker", "exec", node, "crictl", "logs", id)
}

// AgentMetrics reads the agent's /metrics on the node's loopback (the pod
// uses the node's network), with bash's /dev/tcp: the node image has no
// HTTP client.
func (p *kindProvider) AgentMetrics(ctx context.Context, node string) (string, error) {
	const get = `exec 3<>/dev/tcp/127.0.0.1/9475 && printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3`
	out, err := run(ctx, "", "docker", "exec", node, "bash", "-c", get)
	if err != nil {
		return "", fmt.Errorf("GET /metrics on %s: %w: %s", node, err, out)
	}
	if !strings.HasPrefix(out, "HTTP/1.0 200") && !strings.HasPrefix(out, "HTTP/1.1 200") {
		return "", fmt.Errorf("GET /metrics on %s: %s", node, firstLine(out))
	}
	_, body, _ := strings.Cut(out, "\r\n\r\n")
	return body, nil
}

// AgentStatus is /proc/<pid>/status of the agent process on node, read in
// the node container (which sees the processes of its pods).
func (p *kindProvider) AgentStatus(node string) (map[string]string, error) {
	out, err := run(context.Background(), "", "docker", "exec", node, "sh", "-c", `cat /proc/$(pgrep -x noderoute-agent | head -n 1)/status`)
	if err != nil {
		return nil, fmt.Errorf("status of the agent on %s: %w: %s", node, err, out)
	}
	return parseProcStatus(out), nil
}

// RenderedCleanup is deploy/cleanup/netdev (kind nodes use the userspace
// datapath) with the image kind-up loads, noderoute/noderoute:e2e.
func (p *kindProvider) RenderedCleanup(ctx context.Context) (string, error) {
	out, err := run(ctx, "", p.kubectl, "kustomize", filepath.Join(repoRoot(), "deploy", "cleanup", "netdev"))
	if err != nil {
		return "", fmt.Errorf("kubectl kustomize deploy/cleanup/netdev: %w: %s", err, out)
	}
	if !strings.Contains(out, "image: noderoute/noderoute:latest") {
		return "", errors.New("deploy/cleanup/netdev does not run noderoute/noderoute:latest: cannot set the kind image")
	}
	return strings.ReplaceAll(out, "image: noderoute/noderoute:latest", "image: noderoute/noderoute:e2e"), nil
}

// InstallAgent applies deploy/overlays/kind-e2e, as kind-up does, and waits
// for the rollout.
func (p *kindProvider) InstallAgent(ctx context.Context) error {
	if out, err := p.Kubectl(ctx, "apply", "-k", filepath.Join(repoRoot(), "deploy", "overlays", "kind-e2e")); err != nil {
		return fmt.Errorf("kubectl apply -k deploy/overlays/kind-e2e: %w: %s", err, out)
	}
	if out, err := p.Kubectl(ctx, "-n", "kube-system", "rollout", "status", "ds/noderoute-agent", "--timeout=5m"); err != nil {
		return fmt.Errorf("rollout: %w: %s", err, out)
	}
	return nil
}
