package ofctl

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTrace(t *testing.T, file string) *TraceResult {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ParseTrace(string(b))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return res
}

func TestParseTraceAnsweredARP(t *testing.T) {
	res := readTrace(t, "trace-arp-answered.txt")
	if res.Bridge != "br-int" || len(res.Steps) != 2 || res.Unchanged {
		t.Fatalf("%+v", res)
	}
	cls, resp := res.Steps[0], res.Steps[1]
	if cls.Table != 0 || cls.Match != "arp" || cls.Priority != 200 || cls.Cookie != 0x1000000000000 ||
		strings.Join(cls.Actions, "|") != "goto_table:20" {
		t.Errorf("classifier step: %+v", cls)
	}
	if resp.Table != 20 || resp.Match != "arp,arp_tpa=10.222.2.1,arp_op=1" || resp.Priority != 200 ||
		resp.Cookie != 0x1020000000000 || resp.LastAction() != "IN_PORT" || len(resp.Actions) != 8 || len(resp.Notes) != 3 {
		t.Errorf("responder step: %+v", resp)
	}
	if resp.Notes[0] != "NXM_OF_ETH_DST[] is now 02:00:00:00:00:01" {
		t.Errorf("note %q", resp.Notes[0])
	}
	f := FlowFields(res.FinalFlow)
	for k, want := range map[string]string{"arp": "", "arp_op": "2", "dl_src": "aa:bb:cc:dd:ee:ff", "arp_sha": "aa:bb:cc:dd:ee:ff",
		"arp_spa": "10.222.2.1", "arp_tpa": "10.222.1.1", "arp_tha": "02:00:00:00:00:01", "dl_dst": "02:00:00:00:00:01"} {
		if v, ok := f[k]; !ok || v != want {
			t.Errorf("final flow %s = %q, want %q", k, v, want)
		}
	}
	if FlowFields(res.Flow)["arp_op"] != "1" || !strings.HasSuffix(res.DatapathActions, ",2") || !strings.HasPrefix(res.Megaflow, "recirc_id=0,") {
		t.Errorf("flow %q, datapath actions %q, megaflow %q", res.Flow, res.DatapathActions, res.Megaflow)
	}
}

func TestParseTraceAnsweredNDP(t *testing.T) {
	res := readTrace(t, "trace-ndp-answered.txt")
	if len(res.Steps) != 3 {
		t.Fatalf("%+v", res.Steps)
	}
	if s := res.Steps[1]; s.Table != 21 || s.Match != "icmp6,icmp_type=135,nd_target=fd00:10:222:2::1" || s.Cookie != 0x1030000000000 || s.LastAction() != "goto_table:22" {
		t.Errorf("responder step: %+v", s)
	}
	if s := res.Steps[2]; s.Table != 22 || s.Priority != 200 || s.LastAction() != "IN_PORT" {
		t.Errorf("tll step: %+v", s)
	}
	f := FlowFields(res.FinalFlow)
	if f["icmp_type"] != "136" || f["nd_tll"] != "aa:bb:cc:dd:ee:ff" || f["ipv6_src"] != "fd00:10:222:2::1" || f["ipv6_dst"] != "fd00:10:222:1::1" || f["dl_src"] != "aa:bb:cc:dd:ee:ff" {
		t.Errorf("final flow %v", f)
	}
}

func TestParseTraceFallThrough(t *testing.T) {
	for file, want := range map[string]TraceStep{
		"trace-arp-normal.txt":  {Table: 20, Match: "arp", Priority: 190, Cookie: 0x1000000000000, Actions: []string{"NORMAL"}},
		"trace-ndp-normal.txt":  {Table: 21, Match: "icmp6,icmp_type=135", Priority: 190, Cookie: 0x1000000000000, Actions: []string{"NORMAL"}},
		"trace-arp-drop.txt":    {Table: 20, Priority: 0, Cookie: 0x1000000000000, Actions: []string{"drop"}},
		"trace-arp-nomatch.txt": {Table: 20, NoMatch: true, Actions: []string{"drop"}},
	} {
		res := readTrace(t, file)
		// NORMAL floods the request to the bridge's other ports (here
		// its LOCAL port, datapath port 1).
		wantDatapath := "drop"
		if want.Priority == 190 {
			wantDatapath = "1"
		}
		if !res.Unchanged || res.FinalFlow != res.Flow || res.DatapathActions != wantDatapath || len(res.Steps) != 2 {
			t.Errorf("%s: %+v", file, res)
			continue
		}
		got := res.Steps[1]
		if got.Table != want.Table || got.NoMatch != want.NoMatch || got.Match != want.Match || got.Priority != want.Priority ||
			got.Cookie != want.Cookie || strings.Join(got.Actions, "|") != strings.Join(want.Actions, "|") {
			t.Errorf("%s: last step %+v, want %+v", file, got, want)
		}
	}
}

func TestParseTraceErrors(t *testing.T) {
	if _, err := ParseTrace("br-nope: unknown bridge\n"); err == nil {
		t.Error("no Flow: line, no error")
	}
	if _, err := ParseTrace("Flow: arp\n\nbridge(\"br-int\")\n 0. arp, cookie 0x1\n"); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("step without priority: %v", err)
	}
	// A flow of cookie 0 (added by hand): the tracer leaves the cookie out.
	res, err := ParseTrace("Flow: arp\n\nbridge(\"br-int\")\n 0. arp, priority 5\n    drop\n\nFinal flow: unchanged\n")
	if err != nil || res.Steps[0].Cookie != 0 || res.Steps[0].Priority != 5 || res.Steps[0].Match != "arp" {
		t.Errorf("%+v, %v", res, err)
	}
}

func TestResolutionRequest(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	got, err := ResolutionRequest("antrea-gw0", mac, net.ParseIP("10.222.1.1"), net.ParseIP("10.222.2.1"))
	want := "in_port=antrea-gw0,arp,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=1,arp_sha=02:00:00:00:00:01,arp_spa=10.222.1.1,arp_tha=00:00:00:00:00:00,arp_tpa=10.222.2.1"
	if err != nil || got != want {
		t.Errorf("ARP: %q, %v\nwant %q", got, err, want)
	}
	got, err = ResolutionRequest("antrea-gw0", mac, net.ParseIP("fd00:10:222:1::1"), net.ParseIP("fd00:10:222:2::abcd:1"))
	want = "in_port=antrea-gw0,icmp6,dl_src=02:00:00:00:00:01,dl_dst=33:33:ff:cd:00:01,ipv6_src=fd00:10:222:1::1,ipv6_dst=ff02::1:ffcd:1,nw_ttl=255,icmpv6_type=135,icmpv6_code=0,nd_target=fd00:10:222:2::abcd:1,nd_sll=02:00:00:00:00:01"
	if err != nil || got != want {
		t.Errorf("NS: %q, %v\nwant %q", got, err, want)
	}
	if _, err := ResolutionRequest("antrea-gw0", mac, net.ParseIP("fd00::1"), net.ParseIP("10.222.2.1")); err == nil {
		t.Error("IPv6 source for an ARP request: no error")
	}
}
