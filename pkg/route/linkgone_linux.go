package route

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// WaitLinksGone waits until none of the named interfaces exists in ns, or
// fails after timeout naming those left. ovs-vswitchd removes a bridge's
// or port's interface after the database change that removed the port, on
// its own time: a clean-up is not done before that.
func WaitLinksGone(ns *Namespace, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for _, name := range names {
			_, err := ns.Netlink().LinkByName(name)
			var notFound netlink.LinkNotFoundError
			switch {
			case errors.As(err, &notFound):
			case err != nil:
				return fmt.Errorf("look up interface %s in %s: %w", name, ns, err)
			default:
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s still in %s %s after its removal from OVSDB (is ovs-vswitchd running?)",
				strings.Join(left, ", "), ns, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
