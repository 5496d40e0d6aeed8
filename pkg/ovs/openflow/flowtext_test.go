package openflow

import (
	"net"
	"os"
	"strings"
	"testing"
)

// The expected flows render exactly as ovs-ofctl printed table 20 of the
// three-Node example cluster's worker1 (testdata/seed-table20.txt, checked
// against a real bridge by TestSeedTable20OnRealBridge) and table 0.
func TestExpectedFlowsRenderAsOvsOfctl(t *testing.T) {
	golden, err := os.ReadFile("testdata/seed-table20.txt")
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("aa:bb:cc:dd:ee:ff")
	var got []string
	for _, gw := range []string{"10.222.0.1", "10.222.2.1"} {
		f, err := ExpectedArpResponderFlow(1, mac, net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.String())
	}
	base := map[uint8][]string{}
	for _, f := range ExpectedBaseFlows(1, mac) {
		base[f.Table] = append(base[f.Table], f.String())
	}
	got = append(got, base[20]...)
	want := strings.Split(strings.TrimSpace(string(golden)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table 20:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	table0 := base[0]
	wantTable0 := []string{
		"cookie=0x1000000000000, priority=200,arp actions=resubmit(,20)",
		"cookie=0x1000000000000, priority=200,icmp6,icmp_type=135 actions=resubmit(,21)",
		"cookie=0x1000000000000, priority=0 actions=NORMAL",
	}
	if strings.Join(table0, "\n") != strings.Join(wantTable0, "\n") {
		t.Fatalf("table 0:\n%s\nwant:\n%s", strings.Join(table0, "\n"), strings.Join(wantTable0, "\n"))
	}
	if _, err := ExpectedArpResponderFlow(1, mac, net.ParseIP("fd00::1")); err == nil {
		t.Error("IPv6 gateway accepted")
	}
}

// The NDP flows render as ovs-ofctl printed them on this machine's OVS 3.1
// (testdata/ndp-tables.txt, checked against a real bridge by
// TestNdpFlowsOnRealBridge).
func TestExpectedNdpFlowsRenderAsOvsOfctl(t *testing.T) {
	golden, err := os.ReadFile("testdata/ndp-tables.txt")
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("aa:bb:cc:dd:ee:ff")
	var got []string
	for _, gw := range []string{"fd00:10:222::1", "fd00:10:222:2::1"} {
		f, err := ExpectedNdpResponderFlow(1, mac, net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.String())
	}
	for _, f := range ExpectedBaseFlows(1, mac) {
		if f.Table == NdpResponderTable || f.Table == NdpTllTable {
			got = append(got, f.String())
		}
	}
	want := strings.Split(strings.TrimSpace(string(golden)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tables 21 and 22:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, bad := range []string{"10.222.2.1", "::ffff:10.222.2.1"} {
		if _, err := ExpectedNdpResponderFlow(1, mac, net.ParseIP(bad)); err == nil {
			t.Errorf("IPv4 gateway %s accepted", bad)
		}
	}
	// ExpectedResponderFlow picks the responder by family.
	for gw, table := range map[string]uint8{"10.222.2.1": ArpResponderTable, "fd00::101": NdpResponderTable} {
		f, err := ExpectedResponderFlow(1, mac, net.ParseIP(gw))
		if err != nil || f.Table != table {
			t.Errorf("ExpectedResponderFlow(%s) = table %d, %v; want table %d", gw, f.Table, err, table)
		}
	}
}

// ovs-ofctl prints the gateway's two 64-bit halves as C's %#x, so a zero
// half is "0"; nd_target is the address in its compressed form.
func TestExpectedNdpFlowHalvesAndTarget(t *testing.T) {
	mac, _ := net.ParseMAC("aa:bb:cc:dd:ee:ff")
	for gw, want := range map[string][]string{
		"fd00::101":          {"nd_target=fd00::101", "load:0x101->NXM_NX_IPV6_SRC[0..63]", "load:0xfd00000000000000->NXM_NX_IPV6_SRC[64..127]"},
		"::1:0:0:1":          {"nd_target=::1:0:0:1", "load:0x1000000000001->NXM_NX_IPV6_SRC[0..63]", "load:0->NXM_NX_IPV6_SRC[64..127]"},
		"fd00:10:222:2::1":   {"nd_target=fd00:10:222:2::1", "load:0x1->NXM_NX_IPV6_SRC[0..63]", "load:0xfd00001002220002->NXM_NX_IPV6_SRC[64..127]"},
		"2001:db8:0:0:1::1":  {"nd_target=2001:db8::1:0:0:1"},
		"fd00:0:0:1:0:0:0:1": {"nd_target=fd00:0:0:1::1"},
	} {
		f, err := ExpectedNdpResponderFlow(1, mac, net.ParseIP(gw))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(f.String(), w) {
				t.Errorf("%s: %s lacks %q", gw, f, w)
			}
		}
	}
}

func TestFlowTextOmitsDefaults(t *testing.T) {
	for _, tc := range []struct {
		f    FlowText
		want string
	}{
		{FlowText{Priority: DefaultPriority, Actions: "NORMAL"}, "actions=NORMAL"},
		{FlowText{Table: 7, Priority: DefaultPriority, Actions: "drop"}, "table=7, actions=drop"},
		{FlowText{Cookie: 5, Table: 7, Priority: 9, Match: "ip", Actions: "drop"}, "cookie=0x5, table=7, priority=9,ip actions=drop"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.f, got, tc.want)
		}
	}
	if got := (FlowText{Table: 20, Priority: 0}).Key(); got != "table=20,priority=0" {
		t.Errorf("Key = %q", got)
	}
}

func TestTableNames(t *testing.T) {
	if TableName(20) != "ArpResponder" || TableName(0) != "Classifier" || TableName(7) != "" ||
		TableName(21) != "NdpResponder" || TableName(22) != "NdpResponderTll" {
		t.Errorf("TableName: %q %q %q %q %q", TableName(20), TableName(0), TableName(7), TableName(21), TableName(22))
	}
	if id, ok := TableByName("arpresponder"); !ok || id != 20 {
		t.Errorf("TableByName(arpresponder) = %d, %v", id, ok)
	}
	if _, ok := TableByName("nope"); ok {
		t.Error("TableByName(nope) found a table")
	}
	if id, ok := TableByName("NDPRESPONDERTLL"); !ok || id != 22 {
		t.Errorf("TableByName(NDPRESPONDERTLL) = %d, %v", id, ok)
	}
	if got := Tables(); len(got) != 4 || got[0] != 0 || got[1] != 20 || got[2] != 21 || got[3] != 22 {
		t.Errorf("Tables() = %v", got)
	}
}
