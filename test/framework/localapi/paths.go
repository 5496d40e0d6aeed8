package localapi

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/noderoute/noderoute/internal/testsupport"
)

func resolveBinDir(t testing.TB, dir string) string {
	t.Helper()
	if dir == "" {
		dir = os.Getenv(EnvBinDir)
	}
	if dir == "" {
		root, err := testsupport.FindRepoRoot()
		if err != nil {
			testsupport.SkipOrFatal(t, "localapi: cannot find the repository root to locate _output/bin (%v); set Options.BinDir or $%s", err, EnvBinDir)
		}
		dir = filepath.Join(root, "_output", "bin")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("localapi: %v", err)
	}
	return abs
}

// checkVersions compares the stamp file written by hack/build-k8s-binaries.sh
// (<binDir>/.versions) with hack/versions.env. It returns "" when they agree
// or when either file is not available (binaries from elsewhere).
func checkVersions(binDir string) string {
	root, err := testsupport.FindRepoRoot()
	if err != nil {
		return ""
	}
	want, err := readKeyValues(filepath.Join(root, "hack", "versions.env"), "=")
	if err != nil {
		return ""
	}
	stamps, err := readKeyValues(filepath.Join(binDir, ".versions"), " ")
	if err != nil {
		return ""
	}
	for bin, needle := range map[string]string{
		"kube-apiserver": "k8s.io/kubernetes@" + want["KUBE_VERSION"] + " staging@" + want["KUBE_STAGING_VERSION"] + " ",
		"etcd":           "go.etcd.io/etcd/server/v3@" + want["ETCD_VERSION"] + " ",
	} {
		got := stamps[bin]
		if !strings.Contains(got+" ", needle) {
			return fmt.Sprintf("%s in %s was built as %q but hack/versions.env wants %q", bin, binDir, got, strings.TrimSpace(needle))
		}
	}
	return ""
}

// readKeyValues reads "KEY<sep>VALUE" lines, skipping blanks and comments.
func readKeyValues(path, sep string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, sep); ok {
			kv[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return kv, sc.Err()
}
