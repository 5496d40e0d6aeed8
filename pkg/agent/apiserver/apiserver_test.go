package apiserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sampleState() State {
	return State{
		APIVersion: APIVersion, AgentVersion: "v1.2.3", NodeName: "worker1",
		LocalPodCIDRs: []string{"10.222.1.0/24"}, Bridge: "br-int", OVSRunDir: "/var/run/openvswitch",
		GatewayInterface: "antrea-gw0", VirtualMAC: "aa:bb:cc:dd:ee:ff", FlowRound: 3,
		OVSConnected: true, FullSyncDone: true,
		RemoteNodes: []RemoteNodeState{{
			Name:      "worker2",
			Desired:   []Subnet{{PodCIDR: "10.222.2.0/24", GatewayIP: "10.222.2.1"}},
			Installed: []Subnet{{PodCIDR: "10.222.2.0/24", GatewayIP: "10.222.2.1"}},
		}},
	}
}

func TestServeAndFetchState(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "agent.sock")
	srv, err := Serve(sock, sampleState)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if di, _ := os.Stat(filepath.Dir(sock)); di.Mode().Perm() != 0o700 {
		t.Errorf("created directory mode %v, want 0700", di.Mode().Perm())
	}

	st, err := NewClient(sock, time.Second).State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := sampleState(); !reflect.DeepEqual(*st, want) {
		t.Errorf("State =\n%+v\nwant\n%+v", *st, want)
	}
	if n := st.RemoteNode("worker2"); n == nil || n.Desired[0].GatewayIP != "10.222.2.1" {
		t.Errorf("RemoteNode(worker2) = %+v", n)
	}
	if st.RemoteNode("nope") != nil {
		t.Error("RemoteNode(nope) found something")
	}

	// A second server on the same socket is refused while the first
	// answers.
	if _, err := Serve(sock, sampleState); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Serve on a live socket: %v", err)
	}
	srv.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestStaleSocketIsReplacedAndFilesAreNot(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	// A socket nobody listens on, as a killed agent leaves it.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	srv, err := Serve(sock, sampleState)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv.Close()

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(file, sampleState); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Serve over a regular file: %v", err)
	}
	if _, err := Serve("relative.sock", sampleState); err == nil {
		t.Error("relative path accepted")
	}
}

func TestClientErrorNamesTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := NewClient(sock, time.Second).State(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not an UnreachableError", err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, sock) || !strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "http://") {
		t.Errorf("error message %q should name the socket and the cause, not a URL", msg)
	}

	// Something that is not the agent's API.
	other := filepath.Join(t.TempDir(), "other.sock")
	l, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go http.Serve(l, http.NotFoundHandler())
	if _, err := NewClient(other, time.Second).State(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("non-API server: %v", err)
	}
}

type fakeController struct{ st ControllerState }

func (f fakeController) State() ControllerState { return f.st }

func TestAgentStateCombinesConfigAndController(t *testing.T) {
	a := &Agent{
		NodeName: "worker1", Version: "v1", Bridge: "br-int", OVSRunDir: "/run/ovs", GatewayInterface: "antrea-gw0",
		VirtualMAC: "aa:bb:cc:dd:ee:ff", FlowRound: 7, OVSConnected: func() bool { return true },
		Controller: fakeController{ControllerState{LocalNode: "worker1", FullSyncDone: true}},
	}
	st := a.State()
	if st.APIVersion != APIVersion || st.FlowRound != 7 || !st.OVSConnected || !st.FullSyncDone || st.OVSRunDir != "/run/ovs" {
		t.Errorf("State = %+v", st)
	}
	// Empty lists are [] in JSON, not null.
	if st.LocalPodCIDRs == nil || st.RemoteNodes == nil {
		t.Errorf("nil lists in %+v", st)
	}
	a.OVSConnected = nil
	if a.State().OVSConnected {
		t.Error("nil OVSConnected reads as connected")
	}
}
