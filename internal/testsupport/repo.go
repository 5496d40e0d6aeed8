package testsupport

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const modulePath = "github.com/noderoute/noderoute"

// FindRepoRoot walks up from the working directory (a package's directory
// under go test) to the directory holding noderoute's go.mod, or failing
// that the first go.mod found.
func FindRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	first := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if first == "" {
				first = dir
			}
			for _, l := range strings.Split(string(data), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return dir, nil
				}
			}
		}
		if parent := filepath.Dir(dir); parent == dir {
			break
		}
	}
	if first != "" {
		return first, nil
	}
	return "", fmt.Errorf("no go.mod found above %s", wd)
}

// RepoRoot is FindRepoRoot for a test: not finding it fails the test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}
