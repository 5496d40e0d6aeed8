//go:build linux

package deploy

// The DaemonSet's pod, run the way the kubelet would run it, without a
// container runtime, in seconds and without Docker. The real thing (image,
// kubelet, containerd) runs in `make test-kind` (test/e2e on kind); this
// emulation stays for what that run does not check: /healthz going 503
// while OVS is down and 200 again after the agent reconnects (the liveness
// probe's premise), the agent's exit within terminationGracePeriodSeconds
// on SIGTERM, what the hostPaths hold (the local API socket's mode 0600),
// and the uninstall steps of docs/install.md (deploy/cleanup/netdev's
// cleanup container run next to the same ovs container). What is taken from the
// rendered manifests (deploy/overlays/netdev: this machine has no
// openvswitch kernel module), verbatim:
//
//   - each container's command and args, environment (NODE_NAME from the
//     downward API), volume mounts at their paths (hostPath volumes come from
//     a directory standing for the node's root, the ConfigMap from its data,
//     /dev/net/tun from the host), read-only mounts, a read-only root file
//     system, the capability set (bounding set = the added capabilities
//     only, no_new_privs), UID 0;
//   - the in-cluster config: a token of the manifests' ServiceAccount and the
//     CA at /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_*
//     pointing at the API server;
//   - hostNetwork: both containers share one network namespace (the node's),
//     with the API server reachable in it on 127.0.0.1;
//   - the probes: the ovs startup probe (exec) gates the agent's start
//     (native sidecar), then the agent's startup, liveness and readiness
//     probes (httpGet on 127.0.0.1:9475 in the node's namespace);
//   - termination: SIGTERM, main container first, within
//     terminationGracePeriodSeconds.
//
// The image's /usr/local/bin is the freshly built noderoute-agent and
// agentctl plus build/start-ovs.sh; the OVS binaries are the machine's
// (Debian 12's openvswitch-switch, as in the image). Not emulated: PID and
// UTS namespaces, cgroups (resource limits), seccomp.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/test/framework/localapi"
)

// podNode is the Node the pod runs on; the others are its remote Nodes.
const podNode = "worker1"

// podNodes are the three-Node cluster's Nodes and their pod CIDRs.
var podNodes = testsupport.ClusterPodCIDRs()

// imagePath is where the Dockerfile puts our binaries.
const imagePath = "/usr/local/bin"

// testVersion is stamped into the binaries built for the test.
const testVersion = "v0.0.0-deploy-test"

type pod struct {
	t         *testing.T
	api       *localapi.Cluster
	spec      *corev1.PodSpec
	configMap *corev1.ConfigMap
	ns        *testsupport.NetNS
	netns     string // ns.Name, for commands
	dir       string // scratch: node root, ConfigMap, token, overlays, logs
	nodeRoot  string // hostPath P is nodeRoot+P
	imageBin  string // mounted at /usr/local/bin
	apiPort   int    // the API server's port, on 127.0.0.1 in the netns
	http      *http.Client

	mu      sync.Mutex
	running map[string]*exec.Cmd
	exited  map[string]chan error
	seq     int
}

func testPod(t *testing.T, api *localapi.Cluster) {
	for _, bin := range []string{"ip", "unshare", "setpriv", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "ovs-ofctl", "ovs-dpctl", "ovsdb-tool"} {
		if _, err := exec.LookPath(bin); err != nil {
			testsupport.SkipOrFatal(t, "pod test needs %s (apt-get install openvswitch-switch iproute2 util-linux): %v", bin, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("pod test needs /dev/net/tun (userspace datapath): %v", err)
	}

	// The manifests' ServiceAccount and its binding (the Apply subtest did
	// it already unless run on its own with -run).
	if out, err := api.Kubectl("apply", "-k", repoPath(t, "deploy/overlays/netdev")); err != nil {
		t.Fatalf("kubectl apply -k deploy/overlays/netdev: %v\n%s", err, out)
	}
	o := decode(t, "deploy/overlays/netdev", kustomize(t, "deploy/overlays/netdev"))
	p := newPod(t, api, o)
	ctx := context.Background()
	for n, cidr := range podNodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}, Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}}}
		if _, err := api.AdminClient.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Start: ovs, its startup probe, then the agent and its probes.
	begin := time.Now()
	p.start("ovs")
	p.waitStartup("ovs")
	t.Logf("ovs: startup probe passed %s after start", time.Since(begin).Round(time.Millisecond))
	agentStart := time.Now()
	p.start("agent")
	p.waitStartup("agent")
	p.waitReady()
	t.Logf("agent: ready (/readyz 200) %s after its start, %s after the pod's", time.Since(agentStart).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	// An operator's first look: kubectl exec ... -c agent -- agentctl ...
	flows := p.execOK("agent", "agentctl", "flows", "--table", "20", "--no-stats")
	t.Logf("kubectl exec -c agent -- agentctl flows --table 20 --no-stats:\n%s", flows)
	for n, cidr := range podNodes {
		gw := gateway(t, cidr)
		has := strings.Contains(flows, "arp_tpa="+gw+",")
		if want := n != podNode; has != want {
			t.Errorf("agentctl flows: ARP responder for %s (%s) present=%v, want %v", n, gw, has, want)
		}
	}
	routes := p.execOK("agent", "agentctl", "routes")
	t.Logf("agentctl routes:\n%s", routes)
	for _, n := range []string{"master", "worker2"} {
		if !strings.Contains(routes, podNodes[n]) || !strings.Contains(routes, n) {
			t.Errorf("agentctl routes: no route to %s (%s)", n, podNodes[n])
		}
	}
	check := p.execOK("agent", "agentctl", "check")
	t.Logf("agentctl check:\n%s", check)
	if v := p.execOK("agent", "agentctl", "version"); strings.Count(v, testVersion) != 2 {
		t.Errorf("agentctl version: want agentctl's and the agent's version %s:\n%s", testVersion, v)
	}
	if out := p.execOK("agent", "noderoute-agent", "--version"); !strings.Contains(out, testVersion) {
		t.Errorf("noderoute-agent --version: %s", out)
	}
	bridge := strings.TrimSpace(p.execOK("ovs", "ovs-vsctl", "get", "bridge", "br-int", "datapath_type"))
	if bridge != "netdev" {
		t.Errorf("br-int datapath_type %s, want netdev (the overlay's ovsDatapathType)", bridge)
	}
	round1 := p.flowRound()

	// What the hostPaths hold on the node.
	sock := filepath.Join(p.nodeRoot, "var/run/noderoute/agent.sock")
	if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("node's /var/run/noderoute/agent.sock: %v %v, want a socket of mode 0600 (agentctl on the node)", st, err)
	}
	for _, f := range []string{"var/run/openvswitch/db.sock", "var/run/openvswitch/br-int.mgmt", "var/lib/noderoute/openvswitch/conf.db"} {
		if _, err := os.Stat(filepath.Join(p.nodeRoot, f)); err != nil {
			t.Errorf("node's /%s: %v", f, err)
		}
	}
	p.logMemory()
	p.checkConfinement()

	// OVS restarts (the ovs container exits; the kubelet starts it again):
	// /healthz is 503 meanwhile, the agent reconnects and replays its flows.
	t.Run("OVSRestart", func(t *testing.T) {
		stopAt := time.Now()
		p.stop("ovs", syscall.SIGTERM)
		t.Logf("ovs container stopped in %s", time.Since(stopAt).Round(time.Millisecond))
		if code := p.probe("/healthz"); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz with OVS down: %d, want 503", code)
		}
		restart := time.Now()
		p.start("ovs")
		p.waitStartup("ovs")
		for p.probe("/healthz") != http.StatusOK {
			if time.Since(restart) > ovsRestartSeconds*time.Second {
				t.Fatalf("/healthz not 200 %ds after OVS was started again", ovsRestartSeconds)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("/healthz 200 again %s after the ovs container was started again (503 for %s in all)",
			time.Since(restart).Round(time.Millisecond), time.Since(stopAt).Round(time.Millisecond))
		for {
			out, err := p.exec("agent", "agentctl", "check")
			if err == nil {
				break
			}
			if time.Since(restart) > 30*time.Second {
				t.Fatalf("agentctl check after the OVS restart: %v\n%s", err, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("agentctl check clean %s after the restart", time.Since(restart).Round(time.Millisecond))
	})

	// The pod is deleted (upgrade, node drain): SIGTERM to the agent, then to
	// the sidecar. Both exit within the grace period and leave the data path.
	grace := time.Duration(*p.spec.TerminationGracePeriodSeconds) * time.Second
	for _, c := range []string{"agent", "ovs"} {
		t0 := time.Now()
		p.stop(c, syscall.SIGTERM)
		took := time.Since(t0)
		t.Logf("%s: exited %s after SIGTERM (grace period %s)", c, took.Round(time.Millisecond), grace)
		if took > grace {
			t.Errorf("%s took %s to stop, over terminationGracePeriodSeconds (%s)", c, took, grace)
		}
	}
	routesLeft := p.ip("route", "show", "proto", "94")
	if strings.Count(routesLeft, "onlink") != 2 {
		t.Errorf("routes after the pod stopped (want both kept):\n%s", routesLeft)
	}

	// The new pod: same hostPaths, so the same bridge and the next flow round.
	p.start("ovs")
	p.waitStartup("ovs")
	p.start("agent")
	p.waitStartup("agent")
	p.waitReady()
	if round2 := p.flowRound(); round2 != round1+1 {
		t.Errorf("flow round after the pod was replaced: %d, want %d (the OVS database is on a hostPath)", round2, round1+1)
	}
	if out, err := p.exec("agent", "agentctl", "check"); err != nil {
		t.Errorf("agentctl check in the new pod: %v\n%s", err, out)
	}

	// Uninstall as docs/install.md has it: the agent DaemonSet goes (its
	// pod stops), then deploy/cleanup/netdev's cleanup container runs next
	// to the same ovs container (TestCleanupManifests checks it is the
	// agent's), on the same hostPaths and config.
	t.Run("Uninstall", func(t *testing.T) {
		ds := cleanupDaemonSet(t, "deploy/cleanup/netdev")
		cl := container(t, &ds.Spec.Template.Spec, "cleanup")
		runCleanup := func() (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			cmd := p.command(ctx, cl, append(slices.Clone(cl.Command), cl.Args...))
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			t.Logf("cleanup container: %v\n%s", err, out.String())
			return out.String(), err
		}
		// While the agent runs, cleanup refuses and changes nothing.
		if out, err := runCleanup(); err == nil || !strings.Contains(out, "noderoute-agent is running on this node") {
			t.Errorf("cleanup while the agent runs: %v, want a refusal", err)
		}
		if r := p.ip("route", "show", "proto", "94"); strings.Count(r, "onlink") != 2 {
			t.Errorf("routes after the refused cleanup (want both kept):\n%s", r)
		}
		p.stop("agent", syscall.SIGTERM)
		if _, err := runCleanup(); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
		links := p.ip("-br", "link")
		for _, l := range []string{"br-int", "antrea-gw0"} {
			if regexp.MustCompile(`(?m)^` + l + `\s`).MatchString(links) {
				t.Errorf("%s still there after the clean-up:\n%s", l, links)
			}
		}
		if r := p.ip("route", "show", "proto", "94") + p.ip("-6", "route", "show", "proto", "94"); strings.TrimSpace(r) != "" {
			t.Errorf("routes of protocol 94 after the clean-up:\n%s", r)
		}
		if out, err := runCleanup(); err != nil || !strings.Contains(out, "nothing to remove") {
			t.Errorf("second cleanup: %v, want \"nothing to remove\"", err)
		}
	})
}

func gateway(t *testing.T, cidr string) string {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	ip := n.IP.To4()
	ip[3]++
	return ip.String()
}

func newPod(t *testing.T, api *localapi.Cluster, o *objects) *pod {
	p := &pod{
		t:         t,
		api:       api,
		spec:      &o.DaemonSet.Spec.Template.Spec,
		configMap: o.ConfigMap,
		running:   map[string]*exec.Cmd{},
		exited:    map[string]chan error{},
	}
	p.dir = t.TempDir()
	p.nodeRoot = filepath.Join(p.dir, "node")
	p.imageBin = filepath.Join(p.dir, "image-bin")
	for _, d := range []string{p.nodeRoot, p.imageBin, filepath.Join(p.dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			p.logTails()
		}
	})

	// The image's /usr/local/bin.
	build := exec.Command("go", "build", "-trimpath", "-o", p.imageBin+"/",
		"-ldflags", "-X github.com/noderoute/noderoute/pkg/version.Version="+testVersion+
			" -X github.com/noderoute/noderoute/pkg/version.Commit=test",
		"./cmd/noderoute-agent", "./cmd/agentctl")
	build.Dir = testsupport.RepoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := os.ReadFile(repoPath(t, "build/start-ovs.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.imageBin, "start-ovs.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}

	// The ConfigMap volume.
	cmDir := filepath.Join(p.dir, "configmap")
	if err := os.MkdirAll(cmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range o.ConfigMap.Data {
		if err := os.WriteFile(filepath.Join(cmDir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The ServiceAccount token volume: a token of the manifests'
	// ServiceAccount (applied by the Apply subtest), as the kubelet projects it.
	saDir := filepath.Join(p.dir, "serviceaccount")
	if err := os.MkdirAll(saDir, 0o755); err != nil {
		t.Fatal(err)
	}
	token, err := api.Kubectl("create", "token", o.DaemonSet.Spec.Template.Spec.ServiceAccountName, "-n", namespace, "--duration=1h")
	if err != nil {
		t.Fatalf("kubectl create token: %v\n%s", err, token)
	}
	for f, data := range map[string][]byte{"token": []byte(strings.TrimSpace(token)), "ca.crt": api.CAData, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(saDir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The node's network namespace, with the API server on 127.0.0.1.
	// Cleanups run last-in first-out: the processes stop before the
	// namespace is deleted.
	p.ns = testsupport.NewNetNS(t, "nrt-dpl-")
	p.netns = p.ns.Name
	t.Cleanup(p.stopAll)
	p.ip("link", "set", "lo", "up")
	p.proxyAPIServer()
	p.http = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := p.ns.Do(func() error {
					var err error
					c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}

	// Volumes: hostPath under nodeRoot (DirectoryOrCreate), CharDevice from
	// the host itself, ConfigMap, plus the token volume.
	for _, v := range p.spec.Volumes {
		if v.HostPath != nil && (v.HostPath.Type == nil || *v.HostPath.Type == corev1.HostPathDirectoryOrCreate) {
			if err := os.MkdirAll(filepath.Join(p.nodeRoot, v.HostPath.Path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

// volumeSource returns the host directory or file standing for a volume.
func (p *pod) volumeSource(name string) string {
	if name == "serviceaccount" {
		return filepath.Join(p.dir, "serviceaccount")
	}
	v := volume(p.t, p.spec, name)
	switch {
	case v.HostPath != nil && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathCharDev:
		return v.HostPath.Path // a device: the host's own
	case v.HostPath != nil:
		return filepath.Join(p.nodeRoot, v.HostPath.Path)
	case v.EmptyDir != nil:
		dir := filepath.Join(p.dir, "emptydir", name)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			p.t.Fatal(err)
		}
		return dir
	case v.ConfigMap != nil:
		if v.ConfigMap.Name != p.configMap.Name {
			p.t.Fatalf("volume %s: ConfigMap %s is not in the manifests", name, v.ConfigMap.Name)
		}
		return filepath.Join(p.dir, "configmap")
	}
	p.t.Fatalf("volume %s: unsupported source %+v", name, v.VolumeSource)
	return ""
}

// command builds the command line running argv in container c's
// environment: the node's network namespace, a private mount namespace with
// the container's file system view, its capabilities and environment.
func (p *pod) command(ctx context.Context, c *corev1.Container, argv []string) *exec.Cmd {
	p.mu.Lock()
	p.seq++
	scratch := filepath.Join(p.dir, "rootfs", fmt.Sprintf("%s-%d", c.Name, p.seq))
	p.mu.Unlock()
	sc := c.SecurityContext
	readOnlyRoot := sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem

	var s strings.Builder
	q := shellQuote
	fmt.Fprintf(&s, "set -e\nW=%s\nmkdir -p \"$W\"\n", q(scratch))
	// The container's own /run (/var/run), /etc and /var/lib: the image's,
	// written to nowhere on the host (tmpfs; overlays on the host's).
	s.WriteString("mount -t tmpfs -o mode=0755 tmpfs /run\n")
	for i, d := range []string{"/etc", "/var/lib"} {
		fmt.Fprintf(&s, "mkdir -p \"$W/u%d\" \"$W/w%d\"\nmount -t overlay overlay -o lowerdir=%s,upperdir=\"$W/u%d\",workdir=\"$W/w%d\" %s\n", i, i, d, i, i, d)
	}
	// /dev: the few devices a container gets, plus device volumes.
	s.WriteString("mkdir -p \"$W/dev\"\nmount -t tmpfs -o mode=0755 tmpfs \"$W/dev\"\n")
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		fmt.Fprintf(&s, "touch \"$W/dev/%s\"\nmount --bind /dev/%s \"$W/dev/%s\"\n", d, d, d)
	}
	// The image's binaries.
	fmt.Fprintf(&s, "mount --bind %s %s\n", q(p.imageBin), imagePath)
	mounts := append([]corev1.VolumeMount{}, c.VolumeMounts...)
	mounts = append(mounts, corev1.VolumeMount{Name: "serviceaccount", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	// A mount over a parent of the scratch directory (an emptyDir at /tmp)
	// hides the sources of the others: it goes last.
	var last []corev1.VolumeMount
	mounts = slices.DeleteFunc(mounts, func(m corev1.VolumeMount) bool {
		if strings.HasPrefix(p.dir+"/", strings.TrimSuffix(m.MountPath, "/")+"/") {
			last = append(last, m)
			return true
		}
		return false
	})
	mount := func(m corev1.VolumeMount) {
		src := p.volumeSource(m.Name)
		dst := m.MountPath
		if strings.HasPrefix(dst, "/dev/") {
			dst = "$W" + dst
		}
		if st, err := os.Stat(src); err == nil && !st.IsDir() {
			fmt.Fprintf(&s, "mkdir -p \"$(dirname %s)\"\ntouch %s\n", dq(dst), dq(dst))
		} else {
			fmt.Fprintf(&s, "mkdir -p %s\n", dq(dst))
		}
		fmt.Fprintf(&s, "mount --bind %s %s\n", q(src), dq(dst))
		if m.ReadOnly {
			fmt.Fprintf(&s, "mount -o remount,bind,ro %s\n", dq(dst))
		}
	}
	for _, m := range mounts {
		mount(m)
	}
	s.WriteString("mount --move \"$W/dev\" /dev\n")
	for _, m := range last {
		mount(m)
	}
	if readOnlyRoot {
		s.WriteString("mount -o remount,ro /etc\nmount -o remount,ro /var/lib\nmount -o remount,ro /run\nmount -o remount,bind,ro /\n")
	}

	// Capabilities: the bounding set is what the container adds (after
	// dropping ALL); as root, that is also what the process gets.
	caps := "-all"
	if sc != nil && sc.Capabilities != nil {
		for _, c := range sc.Capabilities.Add {
			caps += ",+" + strings.ToLower(string(c))
		}
	}
	priv := []string{"setpriv", "--bounding-set=" + caps, "--inh-caps=-all"}
	if sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		priv = append(priv, "--no-new-privs")
	}
	if sc != nil && sc.RunAsUser != nil {
		priv = append(priv, "--reuid="+strconv.FormatInt(*sc.RunAsUser, 10), "--clear-groups")
	}
	if sc != nil && sc.RunAsGroup != nil {
		priv = append(priv, "--regid="+strconv.FormatInt(*sc.RunAsGroup, 10))
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"HOSTNAME=" + podNode,
		"KUBERNETES_SERVICE_HOST=127.0.0.1",
		"KUBERNETES_SERVICE_PORT=" + strconv.Itoa(p.apiPort),
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env = append(env, e.Name+"="+podNode)
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		default:
			p.t.Fatalf("container %s: env %s: unsupported source", c.Name, e.Name)
		}
	}
	s.WriteString("exec")
	for _, a := range append(append(append(priv, "--", "env", "-i"), env...), argv...) {
		s.WriteString(" " + q(a))
	}
	s.WriteString("\n")

	return exec.CommandContext(ctx, "ip", "netns", "exec", p.netns,
		"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", s.String())
}

// start runs the container's command (command + args) in the background.
func (p *pod) start(name string) {
	p.t.Helper()
	c := container(p.t, p.spec, name)
	argv := append(append([]string{}, c.Command...), c.Args...)
	cmd := p.command(context.Background(), c, argv)
	logf, err := os.OpenFile(filepath.Join(p.dir, "logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== start %s: %q\n", time.Now().Format(time.RFC3339Nano), argv)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting container %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logf.Close()
		done <- err
	}()
	p.mu.Lock()
	p.running[name], p.exited[name] = cmd, done
	p.mu.Unlock()
}

// stop signals the container's main process and waits for it; SIGKILL
// after the grace period, as the kubelet does.
func (p *pod) stop(name string, sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.running[name], p.exited[name]
	delete(p.running, name)
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	grace := 10 * time.Second
	if g := p.spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	select {
	case <-done:
	case <-time.After(grace):
		p.t.Errorf("container %s still running %s after %v: SIGKILL", name, grace, sig)
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *pod) stopAll() {
	for _, c := range []string{"agent", "ovs"} {
		p.stop(c, syscall.SIGTERM)
	}
}

// exited reports whether the container's process ended (and with what).
func (p *pod) exitedWith(name string) (bool, error) {
	p.mu.Lock()
	done := p.exited[name]
	p.mu.Unlock()
	select {
	case err := <-done:
		done <- err // keep it for stop
		return true, err
	default:
		return false, nil
	}
}

// exec runs argv in a running container, like kubectl exec.
func (p *pod) exec(name string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := p.command(ctx, container(p.t, p.spec, name), argv)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (p *pod) execOK(name string, argv ...string) string {
	p.t.Helper()
	out, err := p.exec(name, argv...)
	if err != nil {
		p.t.Fatalf("exec in %s: %q: %v\n%s", name, argv, err, out)
	}
	return out
}

// ip runs ip(8) in the node's network namespace, from the host.
func (p *pod) ip(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", p.netns}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitStartup runs the container's startup probe as the kubelet does, until
// it passes (or fails failureThreshold times in a row).
func (p *pod) waitStartup(name string) {
	p.t.Helper()
	c := container(p.t, p.spec, name)
	pr := c.StartupProbe
	if pr == nil {
		p.t.Fatalf("container %s has no startup probe", name)
	}
	p.runProbe(name, c, pr, "startup")
}

// waitReady runs the agent's readiness probe until it passes; the liveness
// probe must pass meanwhile.
func (p *pod) waitReady() {
	p.t.Helper()
	c := container(p.t, p.spec, "agent")
	p.runProbe("agent", c, c.ReadinessProbe, "readiness")
	if code := p.probe(c.LivenessProbe.HTTPGet.Path); code != http.StatusOK {
		p.t.Fatalf("agent liveness probe: %d", code)
	}
}

func (p *pod) runProbe(name string, c *corev1.Container, pr *corev1.Probe, what string) {
	p.t.Helper()
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	for failures := int32(0); ; {
		if ended, err := p.exitedWith(name); ended {
			p.t.Fatalf("container %s exited (%v) before its %s probe passed", name, err, what)
		}
		var ok bool
		var detail string
		switch {
		case pr.Exec != nil:
			out, err := p.exec(name, pr.Exec.Command...)
			ok, detail = err == nil, fmt.Sprintf("%v %s", err, strings.TrimSpace(out))
		case pr.HTTPGet != nil:
			code := p.probe(pr.HTTPGet.Path)
			ok, detail = code == http.StatusOK, fmt.Sprintf("HTTP %d", code)
		default:
			p.t.Fatalf("container %s: unsupported %s probe", name, what)
		}
		if ok {
			return
		}
		if failures++; failures >= max(pr.FailureThreshold, 1) {
			p.t.Fatalf("container %s: %s probe failed %d times: %s", name, what, failures, detail)
		}
		time.Sleep(period)
	}
}

// probe GETs path on the agent's probe address, in the node's namespace.
func (p *pod) probe(path string) int {
	g := container(p.t, p.spec, "agent").LivenessProbe.HTTPGet
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(g.Host, g.Port.String()), Path: path}
	resp, err := p.http.Get(u.String())
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (p *pod) flowRound() int {
	p.t.Helper()
	out := strings.Trim(strings.TrimSpace(p.execOK("ovs", "ovs-vsctl", "get", "bridge", "br-int", "external_ids:noderoute-flow-round")), `"`)
	n, err := strconv.Atoi(out)
	if err != nil {
		p.t.Fatalf("flow round %q: %v", out, err)
	}
	return n
}

// logMemory logs the resident memory of the pod's processes (for the
// resource requests; a three-node cluster only).
func (p *pod) logMemory() {
	p.mu.Lock()
	agent := p.running["agent"]
	p.mu.Unlock()
	rss := map[string]string{"noderoute-agent": vmRSS(agent.Process.Pid)}
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		b, err := os.ReadFile(filepath.Join(p.nodeRoot, "var/run/openvswitch", d+".pid"))
		if err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			rss[d] = vmRSS(pid)
		}
	}
	p.t.Logf("resident memory with %d Nodes: noderoute-agent %s, ovsdb-server %s, ovs-vswitchd %s",
		len(podNodes), rss["noderoute-agent"], rss["ovsdb-server"], rss["ovs-vswitchd"])
}

// checkConfinement makes sure the emulation confines as the manifests say:
// the processes hold the added capabilities only, the root file system is
// read-only.
func (p *pod) checkConfinement() {
	p.t.Helper()
	pids := map[string]int{}
	p.mu.Lock()
	pids["noderoute-agent"] = p.running["agent"].Process.Pid
	p.mu.Unlock()
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		b, err := os.ReadFile(filepath.Join(p.nodeRoot, "var/run/openvswitch", d+".pid"))
		if err != nil {
			p.t.Fatal(err)
		}
		pids[d], _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	const netAdmin = 1 << 12 // CAP_NET_ADMIN
	for proc, pid := range pids {
		for _, field := range []string{"CapEff", "CapBnd"} {
			if v := procStatus(pid, field); v != fmt.Sprintf("%016x", netAdmin) {
				p.t.Errorf("%s (pid %d): %s %s, want NET_ADMIN only (%016x)", proc, pid, field, v, netAdmin)
			}
		}
	}
	for _, c := range []string{"ovs", "agent"} {
		if out, err := p.exec(c, "touch", "/usr/noderoute-probe"); err == nil || !strings.Contains(out, "Read-only file system") {
			p.t.Errorf("%s container: writing to the root file system: %v %s, want EROFS", c, err, out)
		}
	}
	if out, err := p.exec("agent", "touch", "/var/run/openvswitch/noderoute-probe"); err == nil {
		p.t.Errorf("agent container: its OVS run directory mount is writable: %s", out)
	}
}

func procStatus(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func vmRSS(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "?"
}

func (p *pod) logTails() {
	for _, c := range []string{"ovs", "agent"} {
		b, err := os.ReadFile(filepath.Join(p.dir, "logs", c+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		p.t.Logf("--- %s container log (tail) ---\n%s", c, strings.Join(lines, "\n"))
	}
}

// proxyAPIServer listens on 127.0.0.1 in the node's namespace and forwards
// to the API server (127.0.0.1 of the test's namespace): the serving
// certificate is for 127.0.0.1, so TLS verification holds.
func (p *pod) proxyAPIServer() {
	p.t.Helper()
	u, err := url.Parse(p.api.URL)
	if err != nil {
		p.t.Fatal(err)
	}
	var ln net.Listener
	if err := p.ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		p.t.Fatalf("listening in %s: %v", p.netns, err)
	}
	p.apiPort = ln.Addr().(*net.TCPAddr).Port
	p.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer out.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// dq quotes a path that may start with $W (expanded by the shell).
func dq(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
