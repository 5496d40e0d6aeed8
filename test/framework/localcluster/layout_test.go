package localcluster

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestNewChecksName(t *testing.T) {
	for _, name := range []string{"nrt", "nrt-e2e", "a", "a2345678901234567890"} {
		if _, err := New("/r", name); err != nil {
			t.Errorf("New(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "Nrt", "1nrt", "nrt_e2e", "a23456789012345678901", "nrt/x"} {
		if _, err := New("/r", name); err == nil {
			t.Errorf("New(%q): no error", name)
		}
	}
}

// The layout docs/local-cluster.md, hack/bench.sh and the e2e suite know.
func TestLayout(t *testing.T) {
	l, err := New("/repo", "nrt")
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		l.Dir():                                 "/repo/_output/clusters/nrt",
		l.StateFile():                           "/repo/_output/clusters/nrt/cluster.env",
		l.AdminKubeconfig():                     "/repo/_output/clusters/nrt/admin.kubeconfig",
		l.AgentKubeconfig():                     "/repo/_output/clusters/nrt/agent.kubeconfig",
		l.AgentBin():                            "/repo/_output/clusters/nrt/bin/noderoute-agent",
		l.PKI().Tokens():                        "/repo/_output/clusters/nrt/pki/tokens.csv",
		l.PidFile("etcd"):                       "/repo/_output/clusters/nrt/control-plane/etcd.pid",
		l.LogFile("kube-apiserver"):             "/repo/_output/clusters/nrt/control-plane/kube-apiserver.log",
		l.EtcdDataDir():                         "/repo/_output/clusters/nrt/control-plane/etcd-data",
		l.AgentPidFile("worker1"):               "/repo/_output/clusters/nrt/worker1/agent.pid",
		l.AgentLog("worker1"):                   "/repo/_output/clusters/nrt/worker1/agent.log",
		l.AgentSocket("worker1"):                "/repo/_output/clusters/nrt/worker1/agent.sock",
		l.OVSDir("worker1"):                     "/repo/_output/clusters/nrt/worker1/ovs",
		l.OVS("master").Pidfile("ovs-vswitchd"): "/repo/_output/clusters/nrt/master/ovs/ovs-vswitchd.pid",
		l.NetNS():                               "nrt-net",
		l.NodeNetNS("worker2"):                  "nrt-worker2",
		NetNSPath(l.NetNS()):                    "/var/run/netns/nrt-net",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// What bash makes of ShellVars: the same paths, templates expanded with
// bash's own substitution.
func TestShellVarsInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip(err)
	}
	l, _ := New("/it's a repo", "nrt-e2e")
	var script strings.Builder
	for _, v := range l.ShellVars() {
		script.WriteString(v.Name + "=" + ShellQuote(v.Value) + "\n")
	}
	script.WriteString(`n=worker3; printf '%s\n' "${OUT_DIR}" "${NET_NS}" "${AGENT_PID_T//@NODE@/$n}" "${VSWITCHD_PID_T//@NODE@/$n}" "${NODE_NS_T//@NODE@/$n}"`)
	cmd := exec.Command(bash, "-c", script.String())
	cmd.Env = os.Environ()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{l.Dir(), l.NetNS(), l.AgentPidFile("worker3"), l.OVS("worker3").Pidfile("ovs-vswitchd"), l.NodeNetNS("worker3")}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("bash printed\n%s\nwant\n%s", out, want)
	}
}
