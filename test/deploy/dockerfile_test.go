package deploy

import (
	"os"
	"regexp"
	"testing"
)

// The Dockerfile's default builder image must carry go.mod's Go: the build
// runs with GOTOOLCHAIN=local in the official images, so another Go would
// either refuse go.mod or build with a toolchain CI never used.
// hack/build-image.sh builds its local stand-in from go.mod's version.
func TestDockerfileGoMatchesGoMod(t *testing.T) {
	gomod, err := os.ReadFile(repoPath(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(repoPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	goImage := regexp.MustCompile(`(?m)^ARG GO_IMAGE=golang:(\S+)$`).FindSubmatch(dockerfile)
	if goVersion == nil || goImage == nil {
		t.Fatalf("go directive in go.mod (%v) or ARG GO_IMAGE=golang:<version> in the Dockerfile (%v) not found", goVersion != nil, goImage != nil)
	}
	if string(goVersion[1]) != string(goImage[1]) {
		t.Errorf("Dockerfile's GO_IMAGE is golang:%s, go.mod wants go %s", goImage[1], goVersion[1])
	}
	for _, from := range []string{"FROM ${GO_IMAGE} AS builder", "FROM ${BASE_IMAGE}"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(from) + `$`).Match(dockerfile) {
			t.Errorf("Dockerfile has no line %q: hack/build-image.sh passes the base images as GO_IMAGE and BASE_IMAGE", from)
		}
	}
}
