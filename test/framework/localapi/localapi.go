// Package localapi runs a real, minimal Kubernetes control plane for tests:
// one etcd and one kube-apiserver, built from source by
// hack/build-k8s-binaries.sh at the versions pinned in hack/versions.env.
//
// There is no controller-manager, scheduler or kubelet: objects (Nodes, ...)
// are whatever the test creates. The API server enforces real
// authentication (a static admin token, ServiceAccount tokens) and real
// authorization (Node,RBAC), so tests can check that agents work with least
// privilege (see NodeReaderKubeconfig).
//
// A typical test:
//
//	c := localapi.Start(t, localapi.Options{})
//	_, err := c.AdminClient.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
//	kubeconfig := c.NodeReaderKubeconfig(t) // what the agent under test uses
//
// If the binaries are missing the test is skipped (with a hint to run
// hack/build-k8s-binaries.sh), unless NODEROUTE_REQUIRE_INTEGRATION=1 is set,
// in which case it fails.
package localapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/test/framework/localcluster"
)

const (
	// EnvBinDir overrides the default binary directory (<repo>/_output/bin).
	EnvBinDir = "NODEROUTE_K8S_BIN_DIR"

	// AgentNamespace, AgentServiceAccount and AgentClusterRole name the
	// identity NodeReaderKubeconfig sets up for the agent.
	AgentNamespace      = "kube-system"
	AgentServiceAccount = "noderoute-agent"
	AgentClusterRole    = "noderoute-agent-node-reader"

	// ServiceClusterIPRange is the service CIDR given to the API server.
	ServiceClusterIPRange = "10.0.0.0/24"
	// ServiceAccountIssuer is the issuer of ServiceAccount tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

	buildHint = "run hack/build-k8s-binaries.sh (from the repository root) to build them"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// BinDir holds kube-apiserver and etcd (and optionally kubectl).
	// Default: $NODEROUTE_K8S_BIN_DIR, else <repo>/_output/bin where <repo>
	// is found by walking up from the working directory to go.mod.
	BinDir string
	// BindAddress is the address the API server listens on and the host of
	// Cluster.URL (it is also in the serving certificate). Default
	// 127.0.0.1. Tests using network namespaces pass an address on a bridge
	// so that agents in other namespaces can reach the API server. etcd
	// always listens on 127.0.0.1 only.
	BindAddress string
	// LogDir receives etcd.log and kube-apiserver.log. Default: a directory
	// under t.TempDir() (removed after the test; the log tails are printed
	// when the test failed). Set it to keep the logs.
	LogDir string
	// StartTimeout bounds each start of etcd and of the API server
	// (including waiting for /readyz). Default 90s.
	StartTimeout time.Duration
	// ExtraAPIServerArgs are appended to the kube-apiserver command line.
	ExtraAPIServerArgs []string
}

// Cluster is a running (or stopped, see Stop) etcd + kube-apiserver.
type Cluster struct {
	// URL of the API server, https://<BindAddress>:<port>.
	URL string
	// AdminKubeconfig is a kubeconfig file authenticating as a member of
	// system:masters with a static token, trusting the cluster CA.
	AdminKubeconfig string
	// AdminConfig is the rest.Config behind AdminClient (copy it with
	// rest.CopyConfig before modifying).
	AdminConfig *rest.Config
	// AdminClient is a clientset authenticated as admin.
	AdminClient kubernetes.Interface
	// CAFile is the PEM CA bundle that signed the API server's serving
	// certificate; CAData is its content.
	CAFile string
	CAData []byte
	// LogDir holds etcd.log and kube-apiserver.log (appended to across
	// StartAgain, with a header line per start).
	LogDir string
	// BinDir is where the binaries were taken from.
	BinDir string
	// Dir is the cluster's scratch directory (certificates, etcd data,
	// kubeconfigs).
	Dir string

	t          testing.TB
	opts       Options
	adminToken string

	mu        sync.Mutex
	etcd      *process
	apiserver *process
	etcdArgs  []string
	apiArgs   []string
	lastStart string // timings of the last successful start, for logs
}

// Start starts etcd and kube-apiserver, waits until the API server is ready
// and returns the cluster. Everything is stopped by t.Cleanup. It skips the
// test under -short, and when the binaries have not been built (failing it
// instead with NODEROUTE_REQUIRE_INTEGRATION=1). Root is not needed.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode (needs kube-apiserver and etcd)")
	}
	if opts.BindAddress == "" {
		opts.BindAddress = "127.0.0.1"
	}
	bindIP := net.ParseIP(opts.BindAddress)
	if bindIP == nil {
		t.Fatalf("localapi: BindAddress %q is not an IP address", opts.BindAddress)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 90 * time.Second
	}

	binDir := resolveBinDir(t, opts.BinDir)
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if st, err := os.Stat(filepath.Join(binDir, name)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			testsupport.SkipOrFatal(t, "localapi: %s not found in %s; %s", name, binDir, buildHint)
		}
	}
	if msg := checkVersions(binDir); msg != "" {
		testsupport.SkipOrFatal(t, "localapi: %s; %s", msg, buildHint)
	}

	dir := t.TempDir()
	c := &Cluster{
		t:      t,
		opts:   opts,
		BinDir: binDir,
		Dir:    dir,
		LogDir: opts.LogDir,
	}
	if c.LogDir == "" {
		c.LogDir = filepath.Join(dir, "logs")
	}
	if err := os.MkdirAll(c.LogDir, 0o755); err != nil {
		t.Fatalf("localapi: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory removal.
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails()
		}
		c.Stop()
	})

	// URL host: the bind address, or loopback when binding to all addresses.
	urlIP := bindIP
	if bindIP.IsUnspecified() {
		urlIP = net.ParseIP("127.0.0.1")
		if bindIP.To4() == nil {
			urlIP = net.IPv6loopback
		}
	}

	creds, err := WriteCredentials(c.pki(), "noderoute-localapi-ca", servingIPs(bindIP, urlIP))
	if err != nil {
		t.Fatalf("localapi: %v", err)
	}
	c.CAData, c.CAFile, c.adminToken = creds.CAPEM, c.pki().CACert(), creds.AdminToken

	// Free ports are picked by binding to port 0 and releasing them, which
	// can race with other processes; retry on "address already in use".
	for attempt := 1; attempt <= 3; attempt++ {
		var ports []int
		ports, err = freePorts([]string{"127.0.0.1", "127.0.0.1", opts.BindAddress})
		if err != nil {
			t.Fatalf("localapi: picking ports: %v", err)
		}
		c.URL = "https://" + net.JoinHostPort(urlIP.String(), strconv.Itoa(ports[2]))
		c.buildArgs(ports[0], ports[1], ports[2])
		// A failed attempt may have bootstrapped etcd with other peer URLs.
		if err := os.RemoveAll(filepath.Join(c.Dir, "etcd-data")); err != nil {
			t.Fatalf("localapi: %v", err)
		}
		if err = c.start(); err == nil {
			t.Logf("localapi: kube-apiserver ready at %s (%s; logs in %s)", c.URL, c.lastStart, c.LogDir)
			break
		}
		c.Stop()
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("localapi: attempt %d: port collision, retrying: %v", attempt, err)
	}
	if err != nil {
		t.Fatalf("localapi: starting control plane: %v", err)
	}

	if err := c.setupAdmin(); err != nil {
		t.Fatalf("localapi: %v", err)
	}
	// The system namespaces are created by post-start hooks that /readyz
	// does not wait for.
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	if err := WaitNamespaces(ctx, c.URL, creds, "default", metav1.NamespaceSystem); err != nil {
		t.Fatalf("localapi: %v", err)
	}
	return c
}

// Stop stops kube-apiserver then etcd (SIGTERM, then SIGKILL after a grace
// period). etcd's data directory is kept, so StartAgain brings the same
// cluster state back, on the same URL. Safe to call more than once and from
// any goroutine.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiserver != nil {
		c.apiserver.stop(20 * time.Second)
		c.apiserver = nil
	}
	if c.etcd != nil {
		c.etcd.stop(10 * time.Second)
		c.etcd = nil
	}
}

// Running reports whether both processes are running (they may still be
// starting).
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etcd != nil && !c.etcd.exited() && c.apiserver != nil && !c.apiserver.exited()
}

// StartAgain restarts etcd and kube-apiserver after Stop, with the same
// data, ports, certificates and tokens, and waits until ready. It fails the
// test on error, so call it from the test goroutine. If the cluster is
// still running it is stopped first.
func (c *Cluster) StartAgain() {
	c.t.Helper()
	c.Stop()
	if err := c.start(); err != nil {
		c.Stop()
		c.t.Fatalf("localapi: restarting control plane: %v", err)
	}
	c.t.Logf("localapi: control plane restarted (%s)", c.lastStart)
}

// start launches etcd and kube-apiserver with the prepared arguments and
// waits for both; on error the caller stops whatever was started.
func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.etcd != nil || c.apiserver != nil {
		return errors.New("already running")
	}
	t0 := time.Now()
	var err error
	c.etcd, err = startProcess("etcd", filepath.Join(c.BinDir, "etcd"), c.etcdArgs,
		filepath.Join(c.LogDir, "etcd.log"), EtcdEnv())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StartTimeout)
	defer cancel()
	if err := WaitEtcd(ctx, etcdClientURL(c.etcdArgs), c.etcd.exitErr); err != nil {
		return fmt.Errorf("etcd: %w\n--- tail of %s ---\n%s", err, c.etcd.logPath, tail(c.etcd.logPath, 30))
	}

	t1 := time.Now()
	c.apiserver, err = startProcess("kube-apiserver", filepath.Join(c.BinDir, "kube-apiserver"), c.apiArgs,
		filepath.Join(c.LogDir, "kube-apiserver.log"), os.Environ())
	if err != nil {
		return err
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), c.opts.StartTimeout)
	defer cancel2()
	if err := WaitAPIServer(ctx2, c.URL, Credentials{CAPEM: c.CAData, AdminToken: c.adminToken}, c.apiserver.exitErr); err != nil {
		return fmt.Errorf("kube-apiserver: %w\n--- tail of %s ---\n%s", err, c.apiserver.logPath, tail(c.apiserver.logPath, 40))
	}
	t2 := time.Now()
	c.lastStart = fmt.Sprintf("etcd healthy in %v, kube-apiserver ready in %v",
		t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond))
	return nil
}

// pki is the cluster's credentials directory.
func (c *Cluster) pki() localcluster.PKI { return localcluster.PKI{Dir: filepath.Join(c.Dir, "pki")} }

func (c *Cluster) buildArgs(etcdClientPort, etcdPeerPort, apiPort int) {
	clientURL := "http://127.0.0.1:" + strconv.Itoa(etcdClientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	c.etcdArgs = EtcdArgs("localapi", filepath.Join(c.Dir, "etcd-data"), clientURL, peerURL)
	advertise := c.opts.BindAddress
	if ip := net.ParseIP(advertise); ip.IsUnspecified() {
		advertise = hostOf(c.URL)
	}
	c.apiArgs = APIServerArgs(clientURL, c.opts.BindAddress, advertise, apiPort, c.pki())
	c.apiArgs = append(c.apiArgs, c.opts.ExtraAPIServerArgs...)
}

// EtcdArgs is the command line (without the binary) of a single-member
// etcd named name, for throwaway data.
func EtcdArgs(name, dataDir, clientURL, peerURL string) []string {
	return []string{
		"--name=" + name,
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=" + name + "=" + peerURL,
		"--initial-cluster-state=new",
		// Throwaway data: skip fsync, it dominates write latency.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
}

// APIServerArgs is the command line (without the binary) of a
// kube-apiserver on etcdURL, serving on bind:port with the credentials in
// pki (WriteCredentials), with Node,RBAC authorization.
func APIServerArgs(etcdURL, bind, advertise string, port int, pki localcluster.PKI) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + bind,
		"--secure-port=" + strconv.Itoa(port),
		"--advertise-address=" + advertise,
		"--tls-cert-file=" + pki.ServingCert(),
		"--tls-private-key-file=" + pki.ServingKey(),
		"--cert-dir=" + pki.GeneratedDir(),
		"--token-auth-file=" + pki.Tokens(),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=" + ServiceAccountIssuer,
		"--service-account-key-file=" + pki.SAPub(),
		"--service-account-signing-key-file=" + pki.SAKey(),
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		// kube-apiserver refuses a loopback --advertise-address while the
		// endpoint reconciler (which maintains the "kubernetes" Service
		// endpoints) is on; nothing here needs those endpoints.
		"--endpoint-reconciler-type=none",
	}
}

func (c *Cluster) setupAdmin() error {
	c.AdminConfig = &rest.Config{
		Host:            c.URL,
		BearerToken:     c.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData},
		QPS:             200,
		Burst:           400,
	}
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(c.AdminConfig))
	if err != nil {
		return err
	}
	c.AdminClient = cs
	c.AdminKubeconfig, err = c.WriteKubeconfig("admin", c.adminToken)
	return err
}

// WriteKubeconfig writes <Dir>/<user>.kubeconfig for a bearer token,
// trusting the cluster CA (embedded), and returns its path.
func (c *Cluster) WriteKubeconfig(user, token string) (string, error) {
	path := filepath.Join(c.Dir, user+".kubeconfig")
	return path, WriteKubeconfig(path, "localapi", c.URL, c.CAData, user, token)
}

// WriteKubeconfig writes a kubeconfig file (mode 0600) for server, trusting
// caPEM (embedded), authenticating as user with a bearer token; its
// cluster is named cluster and its context user@cluster.
func WriteKubeconfig(path, cluster, server string, caPEM []byte, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[user+"@"+cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: user}
	cfg.CurrentContext = user + "@" + cluster
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// NodeReaderKubeconfig sets up the least-privilege identity agents run
// with (ServiceAccount kube-system/noderoute-agent bound to a ClusterRole
// allowing only get/list/watch on nodes), mints a token for it with the
// TokenRequest API and returns the path of a kubeconfig using that token.
// It waits until the permissions are effective. Idempotent.
func (c *Cluster) NodeReaderKubeconfig(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := c.AdminClient

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: AgentServiceAccount, Namespace: AgentNamespace}}
	if _, err := cs.CoreV1().ServiceAccounts(AgentNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("localapi: creating ServiceAccount: %v", err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: AgentClusterRole},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"nodes"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("localapi: creating ClusterRole: %v", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: AgentClusterRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AgentClusterRole},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Name: AgentServiceAccount, Namespace: AgentNamespace,
		}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("localapi: creating ClusterRoleBinding: %v", err)
	}

	expiration := int64((24 * time.Hour).Seconds())
	tr, err := cs.CoreV1().ServiceAccounts(AgentNamespace).CreateToken(ctx, AgentServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiration}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("localapi: TokenRequest for %s/%s: %v", AgentNamespace, AgentServiceAccount, err)
	}
	path, err := c.WriteKubeconfig(AgentServiceAccount, tr.Status.Token)
	if err != nil {
		t.Fatalf("localapi: %v", err)
	}

	// RBAC is served from an informer cache: wait until the binding applies.
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("localapi: loading %s: %v", path, err)
	}
	reader, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("localapi: %v", err)
	}
	if err := poll(ctx, 100*time.Millisecond, func() error {
		_, err := reader.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		return err
	}); err != nil {
		t.Fatalf("localapi: node reader still cannot list nodes: %v", err)
	}
	return path
}

// Kubectl runs the kubectl built next to the other binaries against the
// cluster as admin and returns its combined output.
func (c *Cluster) Kubectl(args ...string) (string, error) {
	bin := filepath.Join(c.BinDir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kubectl not built (%v); %s", err, buildHint)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig=" + c.AdminKubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *Cluster) logTails() {
	for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
		p := filepath.Join(c.LogDir, name)
		if _, err := os.Stat(p); err == nil {
			c.t.Logf("localapi: --- tail of %s ---\n%s", p, tail(p, 30))
		}
	}
}

// poll calls f every interval until it returns nil or ctx is done, then
// returns the last error.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func etcdClientURL(args []string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--listen-client-urls="); ok {
			return v
		}
	}
	return ""
}

// EtcdEnv is the caller's environment without the ETCD_* variables, which
// etcd would read as flags.
func EtcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}
