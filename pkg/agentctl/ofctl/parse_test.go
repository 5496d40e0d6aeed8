package ofctl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustParse(t *testing.T, name string) []Flow {
	t.Helper()
	flows, err := Parse(golden(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

// Every golden dump (captured from a real bridge by
// TestGoldenFilesMatchRealBridge) parses into the same flows; with and
// without stats, with and without the reply header.
func TestParseGoldenDumps(t *testing.T) {
	nostats := mustParse(t, "dump-nostats.txt")
	if len(nostats) != 16 {
		t.Fatalf("%d flows, want 16", len(nostats))
	}
	for _, name := range []string{"dump-stats.txt", "dump-stats-legacy.txt"} {
		flows := mustParse(t, name)
		if len(flows) != len(nostats) {
			t.Fatalf("%s: %d flows, want %d", name, len(flows), len(nostats))
		}
		for i := range flows {
			if flows[i].Text() != nostats[i].Text() || !reflect.DeepEqual(flows[i].Extra, nostats[i].Extra) {
				t.Errorf("%s flow %d: %+v\nwant %+v", name, i, flows[i], nostats[i])
			}
			if flows[i].Stats == nil {
				t.Errorf("%s flow %d has no stats", name, i)
			}
		}
	}

	arp := nostats[6]
	if arp.Cookie != 0x1020000000000 || arp.Table != 20 || arp.Priority != 200 ||
		arp.Match != "arp,arp_tpa=10.222.2.1,arp_op=1" || !strings.HasSuffix(arp.Actions, "load:0xade0201->NXM_OF_ARP_SPA[],IN_PORT") || arp.Stats != nil {
		t.Errorf("worker2's flow: %+v", arp)
	}
	if tpa, ok := arp.MatchField("arp_tpa"); !ok || tpa != "10.222.2.1" {
		t.Errorf("arp_tpa = %q, %v", tpa, ok)
	}
	if v, ok := arp.MatchField("arp"); !ok || v != "" {
		t.Errorf("arp = %q, %v", v, ok)
	}
	if _, ok := arp.MatchField("nw_dst"); ok {
		t.Error("nw_dst found in an ARP match")
	}
	if arp.Key() != "table=20,priority=200,arp,arp_tpa=10.222.2.1,arp_op=1" {
		t.Errorf("Key = %s", arp.Key())
	}
	// Table 0 (not printed), default priority (not printed), no match.
	if f := nostats[2]; f.Table != 0 || f.Priority != 0 || f.Match != "" || f.Actions != "NORMAL" {
		t.Errorf("table 0 miss: %+v", f)
	}
	if f := nostats[3]; f.Table != 7 || f.Priority != 0x8000 || f.Match != "" || f.Cookie != 0 || f.Actions != "drop" {
		t.Errorf("match-all flow: %+v", f)
	}
	if f := nostats[4]; !reflect.DeepEqual(f.Extra, []string{"idle_timeout=300", "hard_timeout=600"}) || f.Match != "ip,nw_dst=10.9.9.9" || f.Priority != 9 {
		t.Errorf("flow with timeouts: %+v", f)
	}

	stats := mustParse(t, "dump-stats.txt")
	if s := stats[6].Stats; s.Packets != 1 || s.Bytes != 42 || s.DurationSeconds <= 0 || s.IdleAge != -1 {
		t.Errorf("worker2's stats: %+v", s)
	}
	if s := mustParse(t, "dump-stats-legacy.txt")[6].Stats; s.IdleAge != 0 {
		t.Errorf("legacy idle_age: %+v", s)
	}

	// worker2's NDP responder: an IPv6 nd_target (colons, no commas) and
	// the solicitation it answered.
	ndp := nostats[11]
	if ndp.Cookie != 0x1030000000000 || ndp.Table != 21 || ndp.Priority != 200 ||
		ndp.Match != "icmp6,icmp_type=135,nd_target=fd00:10:222:2::1" || !strings.HasSuffix(ndp.Actions, "->ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE[],resubmit(,22)") {
		t.Errorf("worker2's NDP flow: %+v", ndp)
	}
	if target, ok := ndp.MatchField("nd_target"); !ok || target != "fd00:10:222:2::1" {
		t.Errorf("nd_target = %q, %v", target, ok)
	}
	if s := stats[11].Stats; s.Packets != 1 || s.Bytes != 86 {
		t.Errorf("worker2's NDP stats: %+v", s)
	}
}

// The flow text rebuilt from the parsed fields is ovs-ofctl's line, for
// every flow without extra fields: parsing loses nothing.
func TestFormatRoundTrip(t *testing.T) {
	for _, name := range []string{"dump-nostats.txt", "dump-table20.txt"} {
		for _, f := range mustParse(t, name) {
			if len(f.Extra) > 0 {
				continue
			}
			if got := " " + f.Text().String(); got != f.Line {
				t.Errorf("%s:\n got %q\nwant %q", name, got, f.Line)
			}
		}
	}
	// The lines of table 20 as ovs-ofctl printed them on the example
	// cluster (without the leading space).
	seed, err := os.ReadFile("../../ovs/openflow/testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(seed)), "\n") {
		f, err := ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if f.Text().String() != line {
			t.Errorf("seed line does not round-trip:\n got %s\nwant %s", f.Text().String(), line)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, bad := range []string{
		" cookie=0x1, table=20, priority=200,arp",           // no actions
		" cookie=0xzz, table=20, priority=1 actions=drop",   // bad cookie
		" table=300, priority=1 actions=drop",               // table out of range
		" table=20, priority=99999 actions=drop",            // priority out of range
		" cookie=0x1, duration=xs, table=20, actions=drop",  // bad duration
		" cookie=0x1, table=20, n_packets=-1, actions=drop", // bad counter
	} {
		if _, err := Parse("NXST_FLOW reply (xid=0x4):\n" + bad + "\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: error %v, want one naming line 2", bad, err)
		}
	}
	if flows, err := Parse("NXST_FLOW reply (xid=0x8):\n"); err != nil || len(flows) != 0 {
		t.Errorf("empty table: %v, %v", flows, err)
	}
	f, err := ParseLine(" actions=drop")
	if err != nil || f.Priority != 0x8000 || f.Match != "" || f.Actions != "drop" {
		t.Errorf("bare actions: %+v, %v", f, err)
	}
	f, err = ParseLine(" cookie=0x1, table=3, send_flow_rem check_overlap priority=5,ip actions=drop")
	if err != nil || !reflect.DeepEqual(f.Extra, []string{"send_flow_rem", "check_overlap"}) || f.Match != "ip" || f.Priority != 5 {
		t.Errorf("flags: %+v, %v", f, err)
	}
}

// Exec runs the binary it is given with the arguments agentctl documents
// and turns a failure into an error naming the command and what it said.
func TestExecWithFakeBinary(t *testing.T) {
	dir := t.TempDir()
	target := Target{RunDir: dir, Bridge: "br-int"}
	if err := os.WriteFile(target.Socket(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ovs-ofctl")
	script := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\necho \"OVS_RUNDIR=$OVS_RUNDIR\" >> " + filepath.Join(dir, "args") + "\ncat " + filepath.Join(dir, "out") + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out"), []byte(golden(t, "dump-table20.txt")), 0o600); err != nil {
		t.Fatal(err)
	}
	flows, err := Exec{Binary: bin}.DumpFlows(context.Background(), target, DumpOptions{Table: 20, NoStats: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 5 {
		t.Errorf("%d flows", len(flows))
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	want := "--timeout=10 --names dump-flows unix:" + target.Socket() + " table=20 --no-stats\nOVS_RUNDIR=" + dir + "\n"
	if string(args) != want {
		t.Errorf("ran with\n%s\nwant\n%s", args, want)
	}

	failing := filepath.Join(dir, "failing")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'ovs-ofctl: br-int: failed to connect' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = Exec{Binary: failing}.DumpFlows(context.Background(), target, DumpOptions{Table: AllTables})
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "failed to connect") || !strings.Contains(err.Error(), "dump-flows unix:"+target.Socket()) {
		t.Errorf("failure: %v", err)
	}

	_, err = Exec{Binary: bin}.DumpFlows(context.Background(), Target{RunDir: dir, Bridge: "br-x"}, DumpOptions{Table: AllTables})
	if !errors.Is(err, ErrNoSocket) || !strings.Contains(err.Error(), filepath.Join(dir, "br-x.mgmt")) {
		t.Errorf("missing socket: %v", err)
	}
}
