package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
	"github.com/noderoute/noderoute/pkg/pidfile"
	"github.com/noderoute/noderoute/test/framework/localapi"
	"github.com/noderoute/noderoute/test/framework/localcluster"
)

// The control plane's components, as in their binaries and files.
const (
	etcd      = "etcd"
	apiserver = "kube-apiserver"
)

const (
	etcdTimeout      = 60 * time.Second
	apiserverTimeout = 120 * time.Second
	// stopGrace is how long a component may take to exit on SIGTERM.
	stopGrace = 15 * time.Second
)

func (s *settings) apiURL() (string, error) {
	ip := net.ParseIP(s.apiIP)
	if ip == nil {
		return "", fmt.Errorf("--api-ip %q is not an IP address", s.apiIP)
	}
	return fmt.Sprintf("https://%s", net.JoinHostPort(ip.String(), fmt.Sprint(localcluster.APIServerPort))), nil
}

// rel is path relative to the repository, as the script shows paths.
func (s *settings) rel(path string) string {
	return strings.TrimPrefix(path, s.root+"/")
}

// cmdPKI writes the credentials and the admin kubeconfig.
func cmdPKI(s *settings, _ []string) error {
	url, err := s.apiURL()
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP(s.apiIP), net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	creds, err := localapi.WriteCredentials(s.layout.PKI(), "noderoute-local-cluster-"+s.name+"-ca", ips)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return localapi.WriteKubeconfig(s.layout.AdminKubeconfig(), s.name, url, creds.CAPEM, "admin", creds.AdminToken)
}

// cmdKubeconfig writes a kubeconfig for the token on stdin.
func cmdKubeconfig(s *settings, _ []string) error {
	url, err := s.apiURL()
	if err != nil {
		return err
	}
	if s.user == "" || s.out == "" {
		return fmt.Errorf("kubeconfig needs --user and --out")
	}
	token, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	creds, err := localapi.ReadCredentials(s.layout.PKI())
	if err != nil {
		return err
	}
	return localapi.WriteKubeconfig(s.out, s.name, url, creds.CAPEM, s.user, strings.TrimSpace(string(token)))
}

// cmdStart starts a component, detached; run inside <name>-net.
func cmdStart(s *settings, args []string) error {
	c, err := oneComponent(args)
	if err != nil {
		return err
	}
	if s.binDir == "" {
		return fmt.Errorf("start needs --bin-dir")
	}
	l := s.layout
	if err := os.MkdirAll(l.ControlPlaneDir(), 0o755); err != nil {
		return err
	}
	bin := filepath.Join(s.binDir, c)
	if c == etcd {
		args := localapi.EtcdArgs(s.name, l.EtcdDataDir(), localcluster.EtcdClientURL, localcluster.EtcdPeerURL)
		return s.startDetached(c, bin, args, localapi.EtcdEnv())
	}
	args = localapi.APIServerArgs(localcluster.EtcdClientURL, s.apiIP, s.apiIP, localcluster.APIServerPort, l.PKI())
	// Without a watch grace period, SIGTERM leaves kube-apiserver hanging
	// on the agents' watches well past 15s; with it, it exits in about a
	// second.
	args = append(args, "--shutdown-watch-termination-grace-period=2s")
	return s.startDetached(c, bin, args, os.Environ())
}

// cmdWait waits until a component is ready: etcd healthy, or
// kube-apiserver ready with its system namespaces; run inside <name>-net.
func cmdWait(s *settings, args []string) error {
	c, err := oneComponent(args)
	if err != nil {
		return err
	}
	l := s.layout
	exited := func(component string) func() error {
		return func() error {
			if _, alive := pidfile.AliveIn(l.PidFile(component)); alive {
				return nil
			}
			return fmt.Errorf("%s exited during start-up; tail of %s:\n%s",
				component, s.rel(l.LogFile(component)), ovsdaemon.Tail(l.LogFile(component), 30))
		}
	}
	if c == etcd {
		ctx, cancel := context.WithTimeout(context.Background(), etcdTimeout)
		defer cancel()
		if err := localapi.WaitEtcd(ctx, localcluster.EtcdClientURL, exited(etcd)); err != nil {
			return fmt.Errorf("etcd not healthy after %s: %w", etcdTimeout, err)
		}
		return nil
	}
	url, err := s.apiURL()
	if err != nil {
		return err
	}
	creds, err := localapi.ReadCredentials(l.PKI())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiserverTimeout)
	defer cancel()
	bothAlive := func() error {
		if err := exited(etcd)(); err != nil {
			return err
		}
		return exited(apiserver)()
	}
	if err := localapi.WaitAPIServer(ctx, url, creds, bothAlive); err != nil {
		return fmt.Errorf("kube-apiserver not ready after %s: %w; tail of its log:\n%s",
			apiserverTimeout, err, ovsdaemon.Tail(l.LogFile(apiserver), 30))
	}
	return localapi.WaitNamespaces(ctx, url, creds, "kube-system")
}

// cmdStop stops a component if it runs (its pid file's process, if that
// still names the cluster's directory) and removes its pid file.
func cmdStop(s *settings, args []string) error {
	c, err := oneComponent(args)
	if err != nil {
		return err
	}
	pidPath := s.layout.PidFile(c)
	pid, alive := pidfile.AliveIn(pidPath)
	if alive && pidfile.CmdlineContains(pid, s.layout.Dir()+"/") {
		killed, err := pidfile.Stop(pid, stopGrace)
		if killed {
			log("SIGKILL %d (still running %s after SIGTERM)", pid, stopGrace)
		}
		if err != nil {
			return err
		}
		log("%s of '%s' stopped (pid %d)", c, s.name, pid)
	} else {
		log("%s of '%s' is not running", c, s.name)
	}
	if err := os.Remove(pidPath); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
