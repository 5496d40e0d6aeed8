package localapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // exit status; valid once done is closed
}

func startProcess(name, bin string, args []string, logPath string, env []string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = env
	if err := spawn(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "==== %s: %s exited: %v\n", time.Now().Format(time.RFC3339Nano), name, p.err)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exitErr describes an early exit; nil while the process runs.
func (p *process) exitErr() error {
	if !p.exited() {
		return nil
	}
	return fmt.Errorf("%s exited early: %v", p.name, p.err)
}

// WaitEtcd waits until etcd at clientURL reports itself healthy. exited
// reports why etcd is known to be gone (nil while it may still come up), so
// that an early exit fails at once.
func WaitEtcd(ctx context.Context, clientURL string, exited func() error) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if err := exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
			err = fmt.Errorf("GET /health: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy in time: %v", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitAPIServer waits until the API server at baseURL answers /readyz
// with 200, as admin; exited is as for WaitEtcd.
func WaitAPIServer(ctx context.Context, baseURL string, creds Credentials, exited func() error) error {
	hc, err := adminHTTPClient(creds)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	var last error
	for {
		if err := exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz?verbose", nil)
		req.Header.Set("Authorization", "Bearer "+creds.AdminToken)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s: %s", resp.Status, failedChecks(string(body)))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready in time: %v", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitNamespaces waits until the namespaces exist: the system ones are
// created by post-start hooks that /readyz does not wait for.
func WaitNamespaces(ctx context.Context, baseURL string, creds Credentials, namespaces ...string) error {
	hc, err := adminHTTPClient(creds)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	for _, ns := range namespaces {
		if err := poll(ctx, 100*time.Millisecond, func() error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/namespaces/"+ns, nil)
			req.Header.Set("Authorization", "Bearer "+creds.AdminToken)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET namespace %s: %s", ns, resp.Status)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("namespace %s never appeared: %w", ns, err)
		}
	}
	return nil
}

// adminHTTPClient trusts the cluster's CA.
func adminHTTPClient(creds Credentials) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(creds.CAPEM) {
		return nil, errors.New("bad CA PEM")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}, nil
}

// failedChecks keeps the "[-]..." lines of a verbose /readyz answer.
func failedChecks(body string) string {
	var failed []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "[-]") {
			failed = append(failed, l)
		}
	}
	if len(failed) == 0 {
		return strings.TrimSpace(body)
	}
	return strings.Join(failed, "; ")
}

// freePorts returns one free TCP port per host, all distinct.
func freePorts(hosts []string) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, h := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(h, "0"))
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
