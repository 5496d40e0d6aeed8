//go:build e2e

package e2e

import "github.com/noderoute/noderoute/internal/testsupport"

// repoRoot is the repository root, where hack/, deploy/ and _output/ are;
// the e2e suite cannot run without it.
func repoRoot() string {
	root, err := testsupport.FindRepoRoot()
	if err != nil {
		panic(err)
	}
	return root
}
