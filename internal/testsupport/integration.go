package testsupport

import (
	"os"
	"testing"
)

// RequireIntegrationEnv is the environment variable that, set to "1", turns
// a missing prerequisite of an integration test (root, OVS, iproute2, the
// kube-apiserver and etcd binaries) from a skip into a failure, so that CI
// cannot silently pass without running the integration tests.
const RequireIntegrationEnv = "NODEROUTE_REQUIRE_INTEGRATION"

// IntegrationRequired reports whether RequireIntegrationEnv=1.
func IntegrationRequired() bool { return os.Getenv(RequireIntegrationEnv) == "1" }

// SkipOrFatal skips the test for a missing prerequisite, or fails it when
// IntegrationRequired.
func SkipOrFatal(t testing.TB, format string, args ...any) {
	t.Helper()
	if IntegrationRequired() {
		t.Fatalf(format+" (%s=1, so this is a failure)", append(args, RequireIntegrationEnv)...)
	}
	t.Skipf(format, args...)
}
