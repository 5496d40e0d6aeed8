//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// localProvider drives the cluster of network namespaces made by
// hack/local-cluster.sh: each node a netns with its own OVS and agent, the
// API server in a namespace of its own.
type localProvider struct {
	script string
	name   string
	nodes  []string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// newLocalProvider brings a cluster up (hack/local-cluster.sh up) with pod
// CIDRs of the given IP family (ipv4, ipv6 or dual) and returns a cleanup
// that tears it down unless keep is set.
func newLocalProvider(name string, nodes int, family string, keep bool) (Provider, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("the local provider needs root (network namespaces, OVS)")
	}
	p := &localProvider{script: filepath.Join(repoRoot(), "hack", "local-cluster.sh"), name: name}
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
