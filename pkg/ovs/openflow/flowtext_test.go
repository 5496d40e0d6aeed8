package openflow

import (
	"net"
	"os"
	"strings"
	"testing"
)

// The expected flows render exactly as ovs-ofctl printed the seed's table 20
// (testdata/seed-table20.txt, checked against a real bridge by
// TestSeedTable20OnRealBridge) and table 0.
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
	base := ExpectedBaseFlows(1)
	for _, f := range base[2:] {
		got = append(got, f.String())
	}
	want := strings.Split(strings.TrimSpace(string(golden)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table 20:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	table0 := []string{base[0].String(), base[1].String()}
	wantTable0 := []string{
		"cookie=0x1000000000000, priority=200,arp actions=resubmit(,20)",
		"cookie=0x1000000000000, priority=0 actions=NORMAL",
	}
	if strings.Join(table0, "\n") != strings.Join(wantTable0, "\n") {
		t.Fatalf("table 0:\n%s\nwant:\n%s", strings.Join(table0, "\n"), strings.Join(wantTable0, "\n"))
	}
	if _, err := ExpectedArpResponderFlow(1, mac, net.ParseIP("fd00::1")); err == nil {
		t.Error("IPv6 gateway accepted")
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
	if TableName(20) != "ArpResponder" || TableName(0) != "Classifier" || TableName(7) != "" {
		t.Errorf("TableName: %q %q %q", TableName(20), TableName(0), TableName(7))
	}
	if id, ok := TableByName("arpresponder"); !ok || id != 20 {
		t.Errorf("TableByName(arpresponder) = %d, %v", id, ok)
	}
	if _, ok := TableByName("nope"); ok {
		t.Error("TableByName(nope) found a table")
	}
	if got := Tables(); len(got) != 2 || got[0] != 0 || got[1] != 20 {
		t.Errorf("Tables() = %v", got)
	}
}
