// Command agentctl shows and checks what the noderoute agent programs on
// this node: OVS flows and routes, and the Node each one serves. Run it on
// the host or in the agent's container; see agentctl --help.
package main

import (
	"os"

	"github.com/noderoute/noderoute/pkg/agentctl"
)

func main() {
	os.Exit(agentctl.Main(os.Args[1:]))
}
