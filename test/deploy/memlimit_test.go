package deploy

import (
	"regexp"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// goMemLimit matches what the Go runtime accepts in GOMEMLIMIT: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix.
var goMemLimit = regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`)

func parseGoMemLimit(s string) (int64, bool) {
	m := goMemLimit.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, true
}

// The agent's GOMEMLIMIT must be one the runtime takes (it ignores a bad
// one with a crash at start) and leave room under the container's limit and
// above its request: the limit is a soft target for the heap alone.
func TestAgentGoMemLimit(t *testing.T) {
	o := loadPlain(t)
	agent := container(t, &o.DaemonSet.Spec.Template.Spec, "agent")
	var value string
	for _, e := range agent.Env {
		if e.Name == "GOMEMLIMIT" {
			value = e.Value
		}
	}
	if value == "" {
		t.Fatal("agent container: no GOMEMLIMIT")
	}
	limit, ok := parseGoMemLimit(value)
	if !ok {
		t.Fatalf("GOMEMLIMIT %q: not a size the Go runtime accepts", value)
	}
	memLimit := agent.Resources.Limits[corev1.ResourceMemory]
	memRequest := agent.Resources.Requests[corev1.ResourceMemory]
	if limit*2 > memLimit.Value() {
		t.Errorf("GOMEMLIMIT %s is over half the container's memory limit %s", value, memLimit.String())
	}
	if limit >= memRequest.Value() {
		t.Errorf("GOMEMLIMIT %s is not under the memory request %s: the binary's and runtime's pages come on top", value, memRequest.String())
	}
}

func TestParseGoMemLimit(t *testing.T) {
	for s, want := range map[string]int64{"40MiB": 40 << 20, "1048576": 1 << 20, "2GiB": 2 << 30, "7B": 7} {
		if got, ok := parseGoMemLimit(s); !ok || got != want {
			t.Errorf("parseGoMemLimit(%q) = %d, %v, want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"40M", "40 MiB", "", "-1", "40mib"} {
		if _, ok := parseGoMemLimit(s); ok {
			t.Errorf("parseGoMemLimit(%q) accepted", s)
		}
	}
}
