// Package version holds the build's version, set by the Makefile through
// -ldflags "-X github.com/noderoute/noderoute/pkg/version.Version=...".
package version

import "fmt"

var (
	// Version is the release or `git describe` of the build.
	Version = "v0.0.0-dev"
	// Commit is the git commit of the build.
	Commit = "unknown"
)

// String returns "<version> (commit <commit>)".
func String() string {
	return fmt.Sprintf("%s (commit %s)", Version, Commit)
}
