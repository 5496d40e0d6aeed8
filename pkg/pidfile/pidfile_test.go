package pidfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestReadWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.pid")
	if pid, err := Read(p); pid != 0 || err != nil {
		t.Fatalf("Read(missing) = %d, %v; want 0, nil", pid, err)
	}
	if err := Write(p, 1234); err != nil {
		t.Fatal(err)
	}
	if pid, err := Read(p); pid != 1234 || err != nil {
		t.Fatalf("Read = %d, %v; want 1234", pid, err)
	}
	// As the shell reads them: only the digits count.
	if err := os.WriteFile(p, []byte(" 42\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, _ := Read(p); pid != 42 {
		t.Fatalf("Read = %d, want 42", pid)
	}
}

func TestAliveAndStop(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("own process not alive")
	}
	if Alive(0) || Alive(-1) {
		t.Fatal("pid <= 0 alive")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	pid := cmd.Process.Pid
	// Until the child has exec'ed, its command line is still this test's.
	for deadline := time.Now().Add(5 * time.Second); !CmdlineContains(pid, "sleep 60") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !Alive(pid) || !CmdlineContains(pid, "sleep 60") {
		t.Fatalf("child %d: alive %v, cmdline check %v", pid, Alive(pid), CmdlineContains(pid, "sleep 60"))
	}
	if killed, err := Stop(pid, 5*time.Second); killed || err != nil {
		t.Fatalf("Stop = %v, %v", killed, err)
	}
	<-done
	if Alive(pid) {
		t.Fatal("alive after Stop")
	}
}
