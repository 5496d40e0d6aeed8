package cleanup

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noderoute/noderoute/pkg/agent/config"
)

func TestCheckAgentStopped(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	if err := checkAgentStopped(sock); err != nil {
		t.Errorf("no socket: %v, want nil", err)
	}
	if err := checkAgentStopped(""); err != nil {
		t.Errorf("API turned off: %v, want nil", err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAgentStopped(sock); !errors.Is(err, ErrAgentRunning) || !strings.Contains(err.Error(), sock) {
		t.Errorf("socket answers: %v, want ErrAgentRunning naming %s", err, sock)
	}
	l.Close()
	// A socket file nobody answers on (an agent killed with SIGKILL)
	// does not count. Close removes the file; leave one behind.
	l, err = net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := checkAgentStopped(sock); err != nil {
		t.Errorf("stale socket file: %v, want nil", err)
	}
}

func TestReport(t *testing.T) {
	cfg := config.Default()
	ran := map[string]int{}
	do := func(name string, err error) func(context.Context) error {
		return func(context.Context) error { ran[name]++; return err }
	}
	items := []item{
		{kind: "route", desc: "10.222.0.0/24 via 10.222.0.1 proto 94", do: do("route", nil)},
		{kind: "flow", desc: " cookie=0x1, table=20", do: do("flows", nil)},
		{kind: "flow", desc: " cookie=0x1, table=21"},
		{kind: "bridge", desc: "br-int (created by noderoute-agent)", do: do("bridge", errors.New("boom"))},
	}

	var out bytes.Buffer
	if err := report(context.Background(), Options{Config: &cfg, DryRun: true, Out: &out}, items, nil, nil); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if len(ran) != 0 {
		t.Errorf("dry run ran %v", ran)
	}
	if want := "would remove route 10.222.0.0/24 via 10.222.0.1 proto 94\nwould remove flow cookie=0x1, table=20\nwould remove flow cookie=0x1, table=21\nwould remove bridge br-int (created by noderoute-agent)\nwould remove 1 route, 2 flows, 1 bridge\n"; out.String() != want {
		t.Errorf("dry run output:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	err := report(context.Background(), Options{Config: &cfg, Out: &out}, items, nil, nil)
	if !errors.Is(err, ErrIncomplete) {
		t.Errorf("failed bridge: %v, want ErrIncomplete", err)
	}
	if ran["flows"] != 1 || ran["route"] != 1 || ran["bridge"] != 1 {
		t.Errorf("ran %v, want the flow delete once and each other item once", ran)
	}
	for _, want := range []string{"could not remove bridge br-int (created by noderoute-agent): boom", "removed 1 route, 2 flows\n", "FAILED: bridge br-int (created by noderoute-agent)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := report(context.Background(), Options{Config: &cfg, Out: &out}, nil, nil, []string{"bridge br-int does not exist"}); err != nil {
		t.Errorf("nothing: %v", err)
	}
	if want := "bridge br-int does not exist\nnothing to remove: no route with protocol 94, no flow of noderoute-agent in tables 0, 20, 21, 22 of bridge br-int\n"; out.String() != want {
		t.Errorf("clean node output:\n%s\nwant:\n%s", out.String(), want)
	}
}
