// Package deploy tests the manifests in deploy/ (and build/start-ovs.sh,
// which the DaemonSet runs):
//
//   - manifests_test.go, no API server: the objects, the agent's config file
//     (loaded by the agent's own parser), the DaemonSet's wiring (paths,
//     probes, capabilities, tolerations, update strategy), the kustomize
//     output of deploy/ and of each overlay, hack/kind-e2e.sh and
//     docs/install.md against them;
//   - apiserver_test.go, a real kube-apiserver (test/framework/localapi):
//     `kubectl apply --dry-run=server` of every variant, a real apply, and
//     the ServiceAccount's permissions (kubectl auth can-i, then real
//     requests with a token of it);
//   - pod_linux_test.go: the DaemonSet's pod run as the kubelet would run it,
//     without a container runtime (see there).
//
// The tests that need the API server skip under -short and when not root,
// like the other integration tests; NODEROUTE_REQUIRE_INTEGRATION=1 turns a
// missing binary into a failure.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/noderoute/noderoute/internal/testsupport"
	"github.com/noderoute/noderoute/pkg/agent/config"
	"github.com/noderoute/noderoute/test/framework/localapi"
)

const (
	// plainManifest is the all-in-one file (a link to deploy/base's).
	plainManifest = "deploy/noderoute-agent.yaml"
	namespace     = "kube-system"
	name          = "noderoute-agent"
	// serviceAccountUser is the ServiceAccount's user name in RBAC.
	serviceAccountUser = "system:serviceaccount:kube-system:noderoute-agent"
	// ovsRestartSeconds is the longest OVS restart the agent's liveness
	// probe must sit out (/healthz is 503 meanwhile).
	ovsRestartSeconds = 20
)

// kustomizations are the directories `kubectl apply -k` accepts.
var kustomizations = []string{"deploy", "deploy/base", "deploy/overlays/netdev", "deploy/overlays/kind-e2e"}

func repoPath(t testing.TB, rel string) string { return filepath.Join(testsupport.RepoRoot(t), rel) }

// objects is one set of manifests, decoded strictly (unknown fields fail).
type objects struct {
	ServiceAccount     *corev1.ServiceAccount
	ClusterRole        *rbacv1.ClusterRole
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	ConfigMap          *corev1.ConfigMap
	DaemonSet          *appsv1.DaemonSet
	// Raw holds each document as a generic map, keyed "Kind/name".
	Raw map[string]map[string]any
}

// documents splits a multi-document YAML stream, dropping empty documents.
func documents(t testing.TB, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("splitting YAML: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("YAML document: %v\n%s", err, doc)
		}
		if len(m) > 0 {
			docs = append(docs, doc)
		}
	}
}

func decode(t testing.TB, what string, data []byte) *objects {
	t.Helper()
	o := &objects{Raw: map[string]map[string]any{}}
	for _, doc := range documents(t, data) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := o.Raw[key]; dup {
			t.Fatalf("%s: %s twice", what, key)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(doc, &raw); err != nil {
			t.Fatalf("%s: %s: %v", what, key, err)
		}
		o.Raw[key] = raw
		var target any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ServiceAccount":
			o.ServiceAccount = &corev1.ServiceAccount{}
			target = o.ServiceAccount
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			o.ClusterRole = &rbacv1.ClusterRole{}
			target = o.ClusterRole
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			o.ClusterRoleBinding = &rbacv1.ClusterRoleBinding{}
			target = o.ClusterRoleBinding
		case "v1 ConfigMap":
			o.ConfigMap = &corev1.ConfigMap{}
			target = o.ConfigMap
		case "apps/v1 DaemonSet":
			o.DaemonSet = &appsv1.DaemonSet{}
			target = o.DaemonSet
		default:
			t.Fatalf("%s: unexpected object %s %s", what, meta.APIVersion, key)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("%s: %s: %v", what, key, err)
		}
	}
	if o.ServiceAccount == nil || o.ClusterRole == nil || o.ClusterRoleBinding == nil || o.ConfigMap == nil || o.DaemonSet == nil {
		t.Fatalf("%s: want ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap and DaemonSet, have %v", what, testsupport.SortedKeys(o.Raw))
	}
	return o
}

func loadPlain(t testing.TB) *objects {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, plainManifest))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, plainManifest, data)
}

// kubectlBin is the kubectl hack/build-k8s-binaries.sh builds; the test
// skips without it (fails with NODEROUTE_REQUIRE_INTEGRATION=1).
func kubectlBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode (needs kubectl from hack/build-k8s-binaries.sh)")
	}
	dir := os.Getenv(localapi.EnvBinDir)
	if dir == "" {
		dir = repoPath(t, "_output/bin")
	}
	bin := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		testsupport.SkipOrFatal(t, "kubectl not found (%v); run hack/build-k8s-binaries.sh", err)
	}
	return bin
}

// kustomize renders a kustomization directory (relative to the repository
// root) with kubectl's built-in kustomize.
func kustomize(t testing.TB, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectlBin(t), "kustomize", dir)
	cmd.Dir = testsupport.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

func container(t testing.TB, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

func volume(t testing.TB, spec *corev1.PodSpec, name string) *corev1.Volume {
	t.Helper()
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	t.Fatalf("no volume %q", name)
	return nil
}

// mountAt returns the container's volume mount at path, nil if none.
func mountAt(c *corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// agentConfig loads the ConfigMap's config file with the agent's own parser
// (strict: an unknown key fails), as `noderoute-agent --config` would with
// $NODE_NAME set by the downward API.
func agentConfig(t *testing.T, cm *corev1.ConfigMap, key string) *config.Config {
	t.Helper()
	data, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %q (keys: %v)", cm.Name, key, testsupport.SortedKeys(cm.Data))
	}
	path := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODE_NAME", "worker1")
	fs := flag.NewFlagSet("noderoute-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := config.Parse(fs, []string{"--config=" + path})
	if err != nil {
		t.Fatalf("the agent rejects the ConfigMap's %s: %v\n%s", key, err, data)
	}
	return cfg
}

// configKeys are the config file's keys (the JSON names of config.Config).
func configKeys() []string {
	var keys []string
	typ := reflect.TypeOf(config.Config{})
	for i := 0; i < typ.NumField(); i++ {
		if tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]; tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// agentFlags are the agent's command-line flags (config.Parse's, plus -v,
// -vmodule and -version, which cmd/noderoute-agent adds).
func agentFlags() []string {
	fs := flag.NewFlagSet("noderoute-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, _ = config.Parse(fs, []string{"--help"})
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return append(names, "v", "vmodule", "version")
}

// configFileArg returns the path given to the agent's --config.
func configFileArg(t testing.TB, c *corev1.Container) string {
	t.Helper()
	for i, a := range append(slices.Clone(c.Command), c.Args...) {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(c.Command)+len(c.Args) {
			return append(slices.Clone(c.Command), c.Args...)[i+1]
		}
	}
	t.Fatalf("container %s: no --config argument in %q %q", c.Name, c.Command, c.Args)
	return ""
}

// capabilities returns the added capabilities after checking that the
// container drops all others and cannot gain privileges.
func capabilities(t testing.TB, c *corev1.Container) []string {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatalf("container %s: no securityContext.capabilities", c.Name)
	}
	if !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container %s: drops %v, want [ALL]", c.Name, sc.Capabilities.Drop)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("container %s is privileged", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
	}
	// Added capabilities only take effect for UID 0.
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.RunAsGroup == nil || *sc.RunAsGroup != 0 {
		t.Errorf("container %s: runAsUser and runAsGroup must be 0 (added capabilities need root; the image's default user is not)", c.Name)
	}
	var caps []string
	for _, c := range sc.Capabilities.Add {
		caps = append(caps, string(c))
	}
	return caps
}

// TestPlainManifest checks deploy/noderoute-agent.yaml without an API
// server: what each object holds and how the DaemonSet wires the agent's
// configuration, sockets and probes together.
func TestPlainManifest(t *testing.T) {
	o := loadPlain(t)
	checkObjects(t, o, "system")
}

// checkObjects checks one rendering of the manifests; datapath is the
// ovsDatapathType it must configure.
func checkObjects(t *testing.T, o *objects, datapath string) {
	t.Helper()
	for _, key := range testsupport.SortedKeys(o.Raw) {
		meta := o.Raw[key]["metadata"].(map[string]any)
		if meta["name"] != name {
			t.Errorf("%s: name %v, want %s", key, meta["name"], name)
		}
		ns, _ := meta["namespace"].(string)
		switch kind := strings.Split(key, "/")[0]; kind {
		case "ClusterRole", "ClusterRoleBinding":
			if ns != "" {
				t.Errorf("%s: cluster-scoped, has namespace %q", key, ns)
			}
		default:
			if ns != namespace {
				t.Errorf("%s: namespace %q, want %s", key, ns, namespace)
			}
		}
	}

	// RBAC: get, list and watch on nodes, nothing else.
	wantRules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}}}
	if !reflect.DeepEqual(o.ClusterRole.Rules, wantRules) {
		t.Errorf("ClusterRole rules = %+v, want %+v", o.ClusterRole.Rules, wantRules)
	}
	if o.ClusterRole.AggregationRule != nil {
		t.Errorf("ClusterRole has an aggregation rule")
	}
	crb := o.ClusterRoleBinding
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	wantSubjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}}
	if crb.RoleRef != wantRef || !reflect.DeepEqual(crb.Subjects, wantSubjects) {
		t.Errorf("ClusterRoleBinding binds %+v to %+v, want %+v to %+v", crb.RoleRef, crb.Subjects, wantRef, wantSubjects)
	}

	ds := o.DaemonSet
	spec := &ds.Spec.Template.Spec
	if spec.ServiceAccountName != name {
		t.Errorf("serviceAccountName %q, want %s", spec.ServiceAccountName, name)
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken is false: the agent uses the in-cluster config")
	}
	if !spec.HostNetwork {
		t.Errorf("hostNetwork must be true: routes and the bridge belong to the node's network namespace")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", spec.PriorityClassName)
	}
	// Every node, including control planes: one toleration of everything.
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
	}) {
		t.Errorf("tolerations %+v do not tolerate every taint (want {operator: Exists})", spec.Tolerations)
	}
	if spec.Affinity != nil {
		t.Errorf("affinity %v would keep the agent off some nodes", spec.Affinity)
	}
	for k, v := range spec.NodeSelector {
		if k != "kubernetes.io/os" || v != "linux" {
			t.Errorf("nodeSelector %s=%s would keep the agent off some nodes", k, v)
		}
	}
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil ||
		us.RollingUpdate.MaxUnavailable == nil || us.RollingUpdate.MaxUnavailable.String() != "1" {
		t.Errorf("updateStrategy %+v, want RollingUpdate with maxUnavailable 1", us)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 5 || *g > 30 {
		t.Errorf("terminationGracePeriodSeconds %v, want 5-30 s (the agent and OVS stop within a second)", g)
	}

	ovs := container(t, spec, "ovs")
	agent := container(t, spec, "agent")
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "ovs" ||
		ovs.RestartPolicy == nil || *ovs.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("ovs must be the only init container, a native sidecar (restartPolicy: Always)")
	}
	if ovs.StartupProbe == nil || ovs.StartupProbe.Exec == nil {
		t.Errorf("ovs needs an exec startup probe: the agent starts once it passes")
	}
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "agent" {
		t.Errorf("containers %v, want [agent]", spec.Containers)
	}
	if ovs.Image != agent.Image {
		t.Errorf("images differ: ovs %s, agent %s", ovs.Image, agent.Image)
	}
	if !slices.Equal(ovs.Command, []string{"/usr/local/bin/start-ovs.sh"}) {
		t.Errorf("ovs command %q, want the image's /usr/local/bin/start-ovs.sh", ovs.Command)
	}

	// Minimal capabilities, each explained in the manifest's comments.
	for _, c := range []*corev1.Container{ovs, agent} {
		want := []string{"NET_ADMIN"}
		if got := capabilities(t, c); !slices.Equal(got, want) {
			t.Errorf("container %s adds capabilities %v, want %v", c.Name, got, want)
		}
		r := c.Resources
		if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
			t.Errorf("container %s: want CPU and memory requests and a memory limit, have %+v", c.Name, r)
		}
	}

	// NODE_NAME from the downward API.
	if !slices.ContainsFunc(agent.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Errorf("agent env %+v: want NODE_NAME from fieldRef spec.nodeName", agent.Env)
	}

	// The config file: the ConfigMap key the agent's --config names, in a
	// mount of the ConfigMap; accepted by the agent's own parser.
	cfgPath := configFileArg(t, agent)
	m := mountAt(agent, filepath.Dir(cfgPath))
	if m == nil || volume(t, spec, m.Name).ConfigMap == nil || volume(t, spec, m.Name).ConfigMap.Name != o.ConfigMap.Name {
		t.Fatalf("agent --config=%s: %s is not a mount of ConfigMap %s", cfgPath, filepath.Dir(cfgPath), o.ConfigMap.Name)
	}
	cfg := agentConfig(t, o.ConfigMap, filepath.Base(cfgPath))
	var asMap map[string]any
	if err := yaml.Unmarshal([]byte(o.ConfigMap.Data[filepath.Base(cfgPath)]), &asMap); err != nil {
		t.Fatal(err)
	}
	have := testsupport.SortedKeys(asMap)
	// Every key but nodeName ($NODE_NAME) and kubeconfig (in-cluster), so
	// that the file documents them all.
	for _, k := range configKeys() {
		if k != "nodeName" && k != "kubeconfig" && !slices.Contains(have, k) {
			t.Errorf("the ConfigMap's config file lacks key %s (it lists every setting)", k)
		}
	}
	if slices.Contains(have, "nodeName") || slices.Contains(have, "kubeconfig") {
		t.Errorf("the config file sets nodeName or kubeconfig: they come from $NODE_NAME and the in-cluster config")
	}
	if cfg.OVSDatapathType != datapath {
		t.Errorf("ovsDatapathType %s, want %s", cfg.OVSDatapathType, datapath)
	}
	// The ovs container reads ovsDatapathType from the same file.
	if om := mountAt(ovs, filepath.Dir(cfgPath)); om == nil || om.Name != m.Name {
		t.Errorf("ovs container does not mount the config file at %s (start-ovs.sh checks the datapath's prerequisites)", filepath.Dir(cfgPath))
	}
	if !slices.ContainsFunc(ovs.Env, func(e corev1.EnvVar) bool { return e.Name == "NODEROUTE_CONFIG" && e.Value == cfgPath }) {
		t.Errorf("ovs container: want NODEROUTE_CONFIG=%s", cfgPath)
	}

	// OVS run directory: the same hostPath, at the agent's ovsRunDir, in
	// both containers (and at the same path on the host, for agentctl).
	for _, c := range []*corev1.Container{ovs, agent} {
		vm := mountAt(c, cfg.OVSRunDir)
		if vm == nil {
			t.Errorf("container %s does not mount ovsRunDir %s", c.Name, cfg.OVSRunDir)
			continue
		}
		v := volume(t, spec, vm.Name)
		if v.HostPath == nil || v.HostPath.Path != cfg.OVSRunDir {
			t.Errorf("%s at %s: want hostPath %s", vm.Name, cfg.OVSRunDir, cfg.OVSRunDir)
		}
		if c == ovs && vm.ReadOnly {
			t.Errorf("ovs mounts its run directory read-only")
		}
	}
	// The OVS database on a hostPath of its own.
	if vm := mountAt(ovs, "/var/lib/noderoute/openvswitch"); vm == nil || volume(t, spec, vm.Name).HostPath == nil {
		t.Errorf("ovs: the database directory /var/lib/noderoute/openvswitch (start-ovs.sh's OVS_DBDIR) must be a hostPath")
	}
	// The local API socket's directory: a hostPath at the same path, so
	// agentctl on the host finds the socket at its default.
	sockDir := filepath.Dir(cfg.APISocket)
	if vm := mountAt(agent, sockDir); vm == nil {
		t.Errorf("agent does not mount the directory of apiSocket %s", cfg.APISocket)
	} else if v := volume(t, spec, vm.Name); v.HostPath == nil || v.HostPath.Path != sockDir || vm.ReadOnly {
		t.Errorf("apiSocket directory %s: want a writable hostPath %s", sockDir, sockDir)
	}

	// Probes on the agent's metrics address; hostNetwork, so host 127.0.0.1.
	host, port, err := net.SplitHostPort(cfg.MetricsAddress())
	if err != nil {
		t.Fatalf("metricsBindAddress %q: %v", cfg.MetricsBindAddress, err)
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", agent.StartupProbe, "/healthz"},
		{"livenessProbe", agent.LivenessProbe, "/healthz"},
		{"readinessProbe", agent.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("agent %s: want an httpGet probe of %s", p.what, p.path)
			continue
		}
		g := p.probe.HTTPGet
		if g.Host != host || g.Path != p.path || g.Port.String() != port {
			t.Errorf("agent %s: %s:%s%s, want %s:%s%s", p.what, g.Host, g.Port.String(), g.Path, host, port, p.path)
		}
	}
	if lp := agent.LivenessProbe; lp != nil {
		// Failures before a restart: (failureThreshold-1) periods at least.
		if tolerated := (lp.FailureThreshold - 1) * lp.PeriodSeconds; tolerated < 2*ovsRestartSeconds {
			t.Errorf("agent liveness probe restarts after %d s of 503, want at least %d s (twice an OVS restart)", tolerated, 2*ovsRestartSeconds)
		}
	}
	if sp := agent.StartupProbe; sp != nil && sp.FailureThreshold*sp.PeriodSeconds < 30 {
		t.Errorf("agent startup probe gives up after %d s, want at least 30 s", sp.FailureThreshold*sp.PeriodSeconds)
	}
	if !slices.ContainsFunc(agent.Ports, func(p corev1.ContainerPort) bool { return strconv.Itoa(int(p.ContainerPort)) == port }) {
		t.Errorf("agent ports %+v: want the metrics port %s declared (host port, hostNetwork)", agent.Ports, port)
	}
}

// TestLocalClusterRBACExtraction keeps hack/local-cluster.sh working: it
// applies the ServiceAccount, ClusterRole and ClusterRoleBinding of
// deploy/noderoute-agent.yaml by splitting it on "\n---\n" and keeping the
// documents with a line "kind: <one of them>", and wants exactly three.
func TestLocalClusterRBACExtraction(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, plainManifest))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\nkind: (ServiceAccount|ClusterRole|ClusterRoleBinding)\n`)
	var kinds []string
	for _, rec := range strings.Split(string(data), "\n---\n") {
		if m := re.FindStringSubmatch(rec); m != nil {
			kinds = append(kinds, m[1])
		}
	}
	if !slices.Equal(kinds, []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}) {
		t.Errorf("hack/local-cluster.sh would extract %v, want ServiceAccount ClusterRole ClusterRoleBinding", kinds)
	}
}

// TestKustomizations renders every kustomization with kubectl and checks
// deploy/ and deploy/base are the plain file, and what each overlay
// changes (and that it changes nothing else).
func TestKustomizations(t *testing.T) {
	plain := loadPlain(t)
	for _, dir := range []string{"deploy", "deploy/base"} {
		got := decode(t, dir, kustomize(t, dir))
		for _, key := range testsupport.SortedKeys(plain.Raw) {
			if !reflect.DeepEqual(got.Raw[key], plain.Raw[key]) {
				t.Errorf("kubectl kustomize %s: %s differs from %s", dir, key, plainManifest)
			}
		}
		if len(got.Raw) != len(plain.Raw) {
			t.Errorf("kubectl kustomize %s: objects %v, want %v", dir, testsupport.SortedKeys(got.Raw), testsupport.SortedKeys(plain.Raw))
		}
	}

	t.Run("netdev", func(t *testing.T) {
		o := decode(t, "deploy/overlays/netdev", kustomize(t, "deploy/overlays/netdev"))
		checkObjects(t, o, "netdev")
		checkNetdevOverlay(t, plain, o)
	})
	t.Run("kind-e2e", func(t *testing.T) {
		o := decode(t, "deploy/overlays/kind-e2e", kustomize(t, "deploy/overlays/kind-e2e"))
		checkObjects(t, o, "netdev")
		spec := &o.DaemonSet.Spec.Template.Spec
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			if c.Image != "noderoute/noderoute:e2e" {
				t.Errorf("container %s: image %s, want noderoute/noderoute:e2e (what hack/kind-e2e.sh builds)", c.Name, c.Image)
			}
		}
		script, err := os.ReadFile(repoPath(t, "hack/kind-e2e.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"IMAGE=noderoute/noderoute:e2e", "deploy/overlays/kind-e2e"} {
			if !strings.Contains(string(script), want) {
				t.Errorf("hack/kind-e2e.sh does not contain %q", want)
			}
		}
	})
}

// checkNetdevOverlay: the ConfigMap differs in ovsDatapathType only, the
// DaemonSet by /dev/net/tun in the ovs container only.
func checkNetdevOverlay(t *testing.T, base, o *objects) {
	t.Helper()
	const key = "agent.yaml"
	if got, want := strings.Replace(o.ConfigMap.Data[key], "ovsDatapathType: netdev", "ovsDatapathType: system", 1), base.ConfigMap.Data[key]; got != want {
		t.Errorf("netdev overlay's %s differs from the base's in more than ovsDatapathType:\n%s\nbase:\n%s", key, o.ConfigMap.Data[key], want)
	}
	spec := &o.DaemonSet.Spec.Template.Spec
	ovs := container(t, spec, "ovs")
	vm := mountAt(ovs, "/dev/net/tun")
	if vm == nil {
		t.Fatalf("netdev overlay: the ovs container has no /dev/net/tun")
	}
	v := volume(t, spec, vm.Name)
	if v.HostPath == nil || v.HostPath.Path != "/dev/net/tun" || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathCharDev {
		t.Errorf("netdev overlay: volume %s = %+v, want hostPath /dev/net/tun of type CharDevice", vm.Name, v.VolumeSource)
	}
	// Without the tun device, the DaemonSet must be the base's.
	ds := o.DaemonSet.DeepCopy()
	dspec := &ds.Spec.Template.Spec
	dspec.Volumes = slices.DeleteFunc(dspec.Volumes, func(x corev1.Volume) bool { return x.Name == vm.Name })
	dovs := &dspec.InitContainers[0]
	dovs.VolumeMounts = slices.DeleteFunc(dovs.VolumeMounts, func(x corev1.VolumeMount) bool { return x.Name == vm.Name })
	if !reflect.DeepEqual(ds, base.DaemonSet) {
		t.Errorf("netdev overlay changes the DaemonSet beyond /dev/net/tun")
	}
}

// TestInstallDoc checks docs/install.md against the agent: it documents
// every config file key and every flag, and the commands it shows use the
// paths of deploy/.
func TestInstallDoc(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "docs/install.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, k := range configKeys() {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/install.md does not document config key `%s`", k)
		}
	}
	for _, f := range agentFlags() {
		if !strings.Contains(doc, "`--"+f) && !strings.Contains(doc, "`-"+f) {
			t.Errorf("docs/install.md does not document flag --%s", f)
		}
	}
	for _, want := range []string{
		"kubectl apply -k deploy/",
		"deploy/overlays/netdev",
		"kubectl exec -n kube-system ds/noderoute-agent -c agent -- agentctl check",
		"agentctl flows",
		"ip route flush proto 94",
		"ovs-vsctl del-br br-int",
		"kubectl apply -k deploy/cleanup",
		"kubectl delete -k deploy/cleanup",
		"noderoute-agent cleanup --dry-run",
		"external_ids:noderoute-owner=noderoute-agent",
		"/var/lib/noderoute/openvswitch",
		"/var/run/noderoute",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/install.md does not mention %q", want)
		}
	}
}
