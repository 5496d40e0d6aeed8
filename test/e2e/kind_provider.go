//go:build e2e

package e2e

// The kind provider has NOT been run on the machines this project is
// developed on (no Docker engine there); it follows kind's documented
// behaviour: nodes are Docker containers named after the cluster, kubeadm
// static pods live in /etc/kubernetes/manifests of the control-plane
// container, and the agent runs as the DaemonSet in deploy/.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type kindProvider struct {
	cluster string
	nodes   []string
}

func newKindProvider() (Provider, func(), error) {
	cluster := os.Getenv("KIND_CLUSTER_NAME")
	if cluster == "" {
		cluster = "noderoute-e2e"
	}
	p := &kindProvider{cluster: cluster}
	out, err := p.Kubectl(context.Background(), "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes of kind cluster %s: %w: %s", cluster, err, out)
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

func (p *kindProvider) Kubectl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "", "kubectl", append([]string{"--context", "kind-" + p.cluster}, args...)...)
}

func (p *kindProvider) KubectlStdin(ctx context.Context, stdin string, args ...string) (string, error) {
	return run(ctx, stdin, "kubectl", append([]string{"--context", "kind-" + p.cluster}, args...)...)
}

// Clientset uses the kubeconfig's kind-<cluster> context, as Kubectl does.
func (p *kindProvider) Clientset() (kubernetes.Interface, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(),
		&clientcmd.ConfigOverrides{CurrentContext: "kind-" + p.cluster}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.UserAgent = "noderoute-e2e"
	return kubernetes.NewForConfig(cfg)
}

// AgentID: the agent pod and its agent container's ID and restart count.
func (p *kindProvider) AgentID(ctx context.Context, node string) (string, error) {
	pod, err := p.agentPod(ctx, node)
	if err != nil {
		return "", err
	}
	out, err := p.Kubectl(ctx, "-n", "kube-system", "get", "pod", pod, "-o",
		`jsonpath={.status.containerStatuses[?(@.name=="agent")].containerID} restarts {.status.containerStatuses[?(@.name=="agent")].restartCount}`)
	if err != nil {
		return "", fmt.Errorf("agent pod %s: %w: %s", pod, err, out)
	}
	return pod + " " + out, nil
}

// agentPod returns the agent pod running on node.
func (p *kindProvider) agentPod(ctx context.Context, node string) (string, error) {
	out, err := p.Kubectl(ctx, "-n", "kube-system", "get", "pods", "-l", "app=noderoute-agent",
		"--field-selector", "spec.nodeName="+node, "-o", "jsonpath={.items[0].metadata.name}")
	if err != nil || out == "" {
		return "", fmt.Errorf("no agent pod on %s: %v %s", node, err, out)
	}
	return out, nil
}

// Exec runs in the agent container: hostNetwork, so it sees the node's
// routes, and it holds ovs-ofctl, ip and ping.
func (p *kindProvider) Exec(ctx context.Context, node string, cmd ...string) (string, error) {
	pod, err := p.agentPod(ctx, node)
	if err != nil {
		return "", err
	}
	return p.Kubectl(ctx, append([]string{"-n", "kube-system", "exec", pod, "-c", "agent", "--"}, cmd...)...)
}

// RestartAgent signals the agent process from its kind node container; the
// kubelet restarts the container. SIGTERM could be sent through kubectl
// exec too, but SIGKILL to a container's PID 1 from inside it is ignored.
func (p *kindProvider) RestartAgent(ctx context.Context, node string, kill bool) error {
	pod, err := p.agentPod(ctx, node)
	if err != nil {
		return err
	}
	before, _ := p.Kubectl(ctx, "-n", "kube-system", "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[?(@.name==\"agent\")].restartCount}")
	sig := "-TERM"
	if kill {
		sig = "-KILL"
	}
	if out, err := run(ctx, "", "docker", "exec", node, "pkill", sig, "-x", "noderoute-agent"); err != nil {
		return fmt.Errorf("signal agent on %s: %w: %s", node, err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		after, _ := p.Kubectl(ctx, "-n", "kube-system", "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[?(@.name==\"agent\")].restartCount}")
		if after != before {
			return nil
		}
		time.Sleep(time.Second)
	}
	return errors.New("agent container was not restarted within 2 minutes")
}

// StopAPIServer moves the control plane's etcd and kube-apiserver static pod
// manifests away; the kubelet stops the pods.
func (p *kindProvider) StopAPIServer(ctx context.Context) error {
	cp := p.cluster + "-control-plane"
	_, err := run(ctx, "", "docker", "exec", cp, "sh", "-c",
		"mkdir -p /etc/kubernetes/stopped && mv /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/stopped/")
	return err
}

func (p *kindProvider) StartAPIServer(ctx context.Context) error {
	cp := p.cluster + "-control-plane"
	if out, err := run(ctx, "", "docker", "exec", cp, "sh", "-c", "mv /etc/kubernetes/stopped/*.yaml /etc/kubernetes/manifests/"); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := p.Kubectl(ctx, "get", "--raw", "/readyz"); err == nil {
			return nil
		}
		time.Sleep(2 * time.Second)
	}
	return errors.New("API server not ready 3 minutes after its manifests came back")
}
