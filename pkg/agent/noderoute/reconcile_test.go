package noderoute

import (
	"errors"
	"testing"
	"time"

	"github.com/noderoute/noderoute/internal/testsupport"
)

// A route deleted behind the controller's back comes back on request, long
// before the periodic resync (an hour in these tests), and one route that
// cannot be restored does not keep the others out.
func TestRequestRouteReconcile(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	all := []string{"10.222.0.0/24 via 10.222.0.1", "10.222.2.0/24 via 10.222.2.1"}
	env.eventually(t, []string{"master:10.222.0.1", "worker2:10.222.2.1"}, all)

	for _, dst := range []string{"10.222.0.0/24", "10.222.2.0/24"} {
		if err := env.routes.DeleteRoute(testsupport.MustCIDR(dst)); err != nil {
			t.Fatal(err)
		}
	}
	env.routes.Inject("10.222.0.0/24", errors.New("injected: a foreign route is in the way"))
	env.ctrl.RequestRouteReconcile()
	env.eventually(t, []string{"master:10.222.0.1", "worker2:10.222.2.1"}, all[1:])

	env.routes.Inject("10.222.0.0/24", nil)
	env.ctrl.RequestRouteReconcile()
	env.eventually(t, []string{"master:10.222.0.1", "worker2:10.222.2.1"}, all)
}

// Requests made while one is pending merge: a burst of them costs a few
// route listings, not one per request.
func TestRouteReconcileRequestsMerge(t *testing.T) {
	env := start(t, testsupport.ClusterNodeObjects())
	before := env.routes.Calls().List
	for range 1000 {
		env.ctrl.RequestRouteReconcile()
	}
	time.Sleep(200 * time.Millisecond)
	if n := env.routes.Calls().List - before; n < 1 || n > 3 {
		t.Errorf("%d route listings for 1000 requests, want 1 to 3", n)
	}
}
