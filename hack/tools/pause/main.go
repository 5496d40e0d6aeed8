// Command pause is the sandbox ("pause") container process of the kind node
// image built by hack/build-kind-node-image.sh: it holds a pod's namespaces
// open and does nothing else. It waits for SIGINT or SIGTERM and exits 0,
// reaping any child that is re-parented to it meanwhile (it is PID 1 of a
// pod that shares its process namespace), like the upstream pause program.
//
// Built static (CGO_ENABLED=0); it has no flags (-v prints a version line).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (noderoute hack/tools/pause)")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
