package localapi

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Children get SIGKILL when their parent dies (Pdeathsig), so a test binary
// killed by a timeout or a signal leaves no etcd/kube-apiserver behind.
// Pdeathsig fires when the *thread* that forked exits, and Go may end
// threads (for example when a goroutine that locked its thread, such as one
// switching network namespaces, returns without unlocking). So all children
// are forked from one dedicated goroutine that locks its thread forever.

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range spawnCh {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}
