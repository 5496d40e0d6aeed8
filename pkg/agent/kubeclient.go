package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/noderoute/noderoute/pkg/agent/nodeclient"
	"github.com/noderoute/noderoute/pkg/version"
)

// kubeClient is the agent's connection to the API server, for Nodes.
func kubeClient(kubeconfig string) (*nodeclient.Client, error) {
	var restCfg *rest.Config
	var err error
	if kubeconfig == "" {
		restCfg, err = rest.InClusterConfig()
	} else {
		restCfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("load Kubernetes client config (kubeconfig %q): %w", kubeconfig, err)
	}
	restCfg.UserAgent = "noderoute-agent/" + version.Version
	// Protobuf for the built-in types the agent reads (Nodes): several
	// times cheaper to decode than JSON, for the initial list and for every
	// status update of every Node. JSON stays accepted for servers or
	// proxies that answer nothing else.
	restCfg.ContentType = runtime.ContentTypeProtobuf
	restCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	// No gzip: the API server would compress every watch event for
	// every agent and each agent decompress it again, CPU on both sides
	// for traffic that stays inside the cluster's network
	// (docs/performance.md has the profile).
	restCfg.DisableCompression = true
	return nodeclient.New(restCfg)
}
