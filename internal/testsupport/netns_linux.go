package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces are bind-mounted, as by
// `ip netns add`.
const netnsDir = "/run/netns"

// NetNS is a named network namespace (as in `ip netns`) made for a test.
type NetNS struct {
	Name string
}

// NewNetNS creates a network namespace named prefix plus random hex and
// deletes it when the test ends. Call it after the checks that skip a test
// without root.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns, err := CreateNetNS(prefix + hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return ns
}

// CreateNetNS creates the named network namespace; the caller deletes it.
// netns.NewNamed moves the calling thread into the new namespace, so the
// goroutine is locked to its thread and moved back before anything else can
// run on that thread.
func CreateNetNS(name string) (*NetNS, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	h, nsErr := netns.NewNamed(name)
	if err := netns.Set(orig); err != nil {
		// Stay locked: the runtime discards a thread still locked
		// when its goroutine exits, so the wrong namespace dies with
		// it instead of leaking into other goroutines.
		return nil, fmt.Errorf("switch back to the original netns: %w", err)
	}
	runtime.UnlockOSThread()
	if nsErr != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, nsErr)
	}
	h.Close()
	return &NetNS{Name: name}, nil
}

// Path is the namespace's bind mount, for APIs that take a path.
func (n *NetNS) Path() string { return filepath.Join(netnsDir, n.Name) }

// Open returns a handle on the namespace; the caller closes it.
func (n *NetNS) Open() (netns.NsHandle, error) {
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		return h, fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	return h, nil
}

// Do runs f on an OS thread switched to the namespace; sockets f creates
// stay in that namespace.
func (n *NetNS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := n.Open()
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// The thread stays locked, so it dies with this goroutine.
			errc <- fmt.Errorf("restoring the network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Delete removes the namespace's name; the namespace itself goes when no
// process or handle uses it any more.
func (n *NetNS) Delete() error {
	if err := netns.DeleteNamed(n.Name); err != nil {
		return fmt.Errorf("delete netns %s: %w", n.Name, err)
	}
	return nil
}
