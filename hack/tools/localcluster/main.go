// Command localcluster is the Go half of hack/local-cluster.sh: the
// cluster's file layout, its control plane (credentials, etcd,
// kube-apiserver) and each node's Open vSwitch, with the code the tests use
// (test/framework/localapi, pkg/ovs/ovsdaemon). The script keeps the
// command line, the namespaces and links, the agents and the Kubernetes
// objects, and runs this tool inside the namespace concerned; it builds it
// into _output/tools/localcluster.
//
//	localcluster paths      --root R --name N
//	localcluster pki        --root R --name N --api-ip IP
//	localcluster kubeconfig --root R --name N --api-ip IP --user U --out FILE  (token on stdin)
//	localcluster start      --root R --name N --api-ip IP --bin-dir D etcd|kube-apiserver
//	localcluster wait       --root R --name N --api-ip IP etcd|kube-apiserver
//	localcluster stop       --root R --name N etcd|kube-apiserver
//	localcluster ovs-start  --root R --name N --node NODE
//	localcluster ovs-stop   --root R --name N --node NODE
//
// Messages and errors are written as the script writes its own
// ("[local-cluster] ...").
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/noderoute/noderoute/test/framework/localcluster"
)

// settings are the flags every subcommand shares.
type settings struct {
	root, name, apiIP, binDir, node, user, out string
	layout                                     localcluster.Layout
}

func log(format string, args ...any) {
	fmt.Printf("[local-cluster] "+format+"\n", args...)
}

func die(err error) {
	fmt.Fprintf(os.Stderr, "[local-cluster] ERROR: %v\n", err)
	os.Exit(1)
}

var commands = map[string]func(*settings, []string) error{
	"paths":      cmdPaths,
	"pki":        cmdPKI,
	"kubeconfig": cmdKubeconfig,
	"start":      cmdStart,
	"wait":       cmdWait,
	"stop":       cmdStop,
	"ovs-start":  cmdOVSStart,
	"ovs-stop":   cmdOVSStop,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: localcluster paths|pki|kubeconfig|start|wait|stop|ovs-start|ovs-stop --root R --name N [...]\n(run by hack/local-cluster.sh; see its help)")
		os.Exit(2)
	}
	s := &settings{}
	fs := flag.NewFlagSet("localcluster "+os.Args[1], flag.ExitOnError)
	fs.StringVar(&s.root, "root", "", "repository root")
	fs.StringVar(&s.name, "name", "", "cluster name")
	fs.StringVar(&s.apiIP, "api-ip", "", "the API server's address on the underlay")
	fs.StringVar(&s.binDir, "bin-dir", "", "directory of etcd and kube-apiserver")
	fs.StringVar(&s.node, "node", "", "node name")
	fs.StringVar(&s.user, "user", "", "kubeconfig user")
	fs.StringVar(&s.out, "out", "", "kubeconfig file to write")
	if err := fs.Parse(os.Args[2:]); err != nil {
		die(err)
	}
	if s.root == "" {
		die(fmt.Errorf("--root is required"))
	}
	var err error
	if s.layout, err = localcluster.New(s.root, s.name); err != nil {
		die(err)
	}
	if err := commands[os.Args[1]](s, fs.Args()); err != nil {
		die(err)
	}
}

// cmdPaths prints the layout as shell assignments, for eval.
func cmdPaths(s *settings, _ []string) error {
	var b strings.Builder
	for _, v := range s.layout.ShellVars() {
		fmt.Fprintf(&b, "%s=%s\n", v.Name, localcluster.ShellQuote(v.Value))
	}
	_, err := os.Stdout.WriteString(b.String())
	return err
}

// oneComponent checks the single argument naming a control-plane component.
func oneComponent(args []string) (string, error) {
	if len(args) != 1 || (args[0] != etcd && args[0] != apiserver) {
		return "", fmt.Errorf("want one of %s, %s; got %q", etcd, apiserver, args)
	}
	return args[0], nil
}
