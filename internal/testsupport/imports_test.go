package testsupport

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotInBinaries keeps this package out of what ships: no command's
// dependencies may include it.
func TestNotInBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list; skipped in -short mode")
	}
	cmd := exec.Command("go", "list", "-deps", "./cmd/...")
	cmd.Dir = RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/...: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == modulePath+"/internal/testsupport" {
			t.Fatalf("%s is a dependency of a command in cmd/; it is for tests only", p)
		}
	}
}
