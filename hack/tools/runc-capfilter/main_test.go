package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// This machine's kind of bounding set: everything up to CAP_CHECKPOINT_RESTORE
// but CAP_SYS_RESOURCE.
const boundingWithoutSysResource = 0x1fffeffffff

func TestSpecFile(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--root", "/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b/config.json"},
		{[]string{"--systemd-cgroup", "--root=/r", "run", "-b=/b2", "id"}, "/b2/config.json"},
		{[]string{"create", "id"}, "./config.json"},
		{[]string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"}, "/tmp/p.json"},
		{[]string{"--debug", "exec", "-p", "/tmp/q.json", "id"}, "/tmp/q.json"},
		{[]string{"--root", "/r", "start", "id"}, ""},
		{[]string{"--root", "/r", "delete", "--force", "id"}, ""},
		{[]string{"--version"}, ""},
	} {
		if got := specFile(tc.args); got != tc.want {
			t.Errorf("specFile(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestFilterConfigDropsOnlyUngrantable(t *testing.T) {
	spec := `{"ociVersion":"1.0.2","process":{"args":["/sbin/init"],"capabilities":{` +
		`"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN","CAP_FUTURE_THING"],` +
		`"effective":["CAP_SYS_RESOURCE","CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]},"cwd":"/"},` +
		`"linux":{"maskedPaths":[]}}`
	out, changed, err := filterSpec([]byte(spec), boundingWithoutSysResource)
	if err != nil || !changed {
		t.Fatalf("filterSpec: changed=%v err=%v", changed, err)
	}
	var doc struct {
		OCIVersion string `json:"ociVersion"`
		Process    struct {
			Args []string            `json:"args"`
			Caps map[string][]string `json:"capabilities"`
			Cwd  string              `json:"cwd"`
		} `json:"process"`
		Linux map[string]any `json:"linux"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"bounding":  {"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_FUTURE_THING"},
		"effective": {"CAP_SYS_ADMIN"},
		"permitted": {"CAP_SYS_ADMIN"},
	}
	if !reflect.DeepEqual(doc.Process.Caps, want) {
		t.Errorf("capabilities = %v, want %v", doc.Process.Caps, want)
	}
	if doc.OCIVersion != "1.0.2" || doc.Process.Cwd != "/" || len(doc.Process.Args) != 1 || doc.Linux == nil {
		t.Errorf("other fields changed: %s", out)
	}
}

func TestFilterProcessFileAndNoChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "process.json")
	proc := `{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE","CAP_KILL"]}}`
	if err := os.WriteFile(path, []byte(proc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := filterFile(path, boundingWithoutSysResource); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var got struct {
		Caps map[string][]string `json:"capabilities"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Caps["bounding"], []string{"CAP_KILL"}) {
		t.Errorf("bounding = %v, want [CAP_KILL]", got.Caps["bounding"])
	}
	// A complete bounding set: the file is left byte for byte.
	full := `{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE"]}}`
	out, changed, err := filterSpec([]byte(full), 1<<41-1)
	if err != nil || changed || string(out) != full {
		t.Errorf("complete bounding set: changed=%v err=%v out=%s", changed, err, out)
	}
}
