package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A realistic Node must weigh what a kubelet's does (8-12 KB of JSON), or
// the benchmark's list and update costs mean nothing.
func TestRealisticNodeSize(t *testing.T) {
	for _, i := range []int{0, 4999, 32767} {
		b, err := json.Marshal(benchNode(i, shapeRealistic))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 8*1024 || len(b) > 12*1024 {
			t.Errorf("bench-%d: %d bytes of JSON, want 8-12 KB", i, len(b))
		}
		min, err := json.Marshal(benchNode(i, shapeMinimal))
		if err != nil {
			t.Fatal(err)
		}
		if len(min) > 512 {
			t.Errorf("bench-%d minimal: %d bytes of JSON, want a few hundred", i, len(min))
		}
	}
}

func TestRealisticNodesDiffer(t *testing.T) {
	a, _ := json.Marshal(benchNode(1, shapeRealistic).Status)
	b, _ := json.Marshal(benchNode(2, shapeRealistic).Status)
	if string(a) == string(b) {
		t.Error("bench-1 and bench-2 have the same status")
	}
}

func TestParseNodeShape(t *testing.T) {
	for _, s := range []string{"minimal", "realistic"} {
		if got, err := parseNodeShape(s); err != nil || string(got) != s {
			t.Errorf("parseNodeShape(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := parseNodeShape("big"); err == nil {
		t.Error("parseNodeShape(big): no error")
	}
}

func TestParseCounters(t *testing.T) {
	text := `# HELP noderoute_sync_duration_seconds x
noderoute_sync_duration_seconds_count{sync="node"} 12
noderoute_sync_duration_seconds_count{sync="full"} 1
noderoute_sync_errors_total{kind="flows",sync="node"} 2
noderoute_sync_errors_total{kind="routes",sync="node"} 3
`
	got := parseCounters(text, heartbeatCounters)
	want := map[string]float64{"node_syncs": 12, "full_syncs": 1, "sync_errors": 5}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestHeartbeatPatchChangesOnlyHeartbeats(t *testing.T) {
	b, err := heartbeatPatch(time.Unix(1800000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, `{"status":{"conditions":[{"type":"NetworkUnavailable","lastHeartbeatTime":"2027-01-15T08:00:00Z"}`) || strings.Contains(s, "spec") {
		t.Errorf("patch %s", s)
	}
}
