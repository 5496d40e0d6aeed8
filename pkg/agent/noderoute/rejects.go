package noderoute

import (
	"errors"
	"fmt"

	"k8s.io/klog/v2"
)

// Kinds of refused pod CIDRs: ignoredCIDR.Kind (apiserver.IgnoredCIDR.Kind
// in the local API), and the label of the agent's rejection counter.
const (
	// RejectMalformed: not a CIDR at all.
	RejectMalformed = "malformed"
	// RejectPrefixLength: /0 (would capture all traffic) or too long to
	// hold a gateway and pods (/31, /32, /127, /128).
	RejectPrefixLength = "prefix_length"
	// RejectFamily: an address family this node has no pod CIDR of (an
	// IPv6 pod CIDR on an IPv4-only node): its pods could not use it.
	RejectFamily = "address_family"
	// RejectOverlapLocal: overlaps this node's own pod CIDR, which would
	// hijack local pod traffic.
	RejectOverlapLocal = "overlaps_local"
	// RejectOverlapRemote: overlaps another remote Node's installed pod
	// CIDR; the Node that had it first keeps it.
	RejectOverlapRemote = "overlaps_remote"
)

// RejectKinds lists every kind of refused pod CIDR.
var RejectKinds = []string{RejectMalformed, RejectPrefixLength, RejectFamily, RejectOverlapLocal, RejectOverlapRemote}

// cidrError is why a pod CIDR is refused, with its kind.
type cidrError struct {
	kind string
	msg  string
}

func (e *cidrError) Error() string { return e.msg }

func rejectf(kind, format string, args ...interface{}) error {
	return &cidrError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// rejectKind returns the kind of a parse error; RejectMalformed when it
// carries none.
func rejectKind(err error) string {
	var ce *cidrError
	if errors.As(err, &ce) {
		return ce.kind
	}
	return RejectMalformed
}

// RejectObserver is the optional part of an Observer that counts refused
// pod CIDRs.
type RejectObserver interface {
	// ObserveRejectedCIDR reports a pod CIDR newly refused, by kind.
	ObserveRejectedCIDR(kind string)
}

// reportRejections logs and counts the pod CIDRs of a Node that are newly
// refused: a refusal is reported once when it appears, not at every sync of
// the Node (its status updates and the periodic resyncs would repeat it),
// and again if it goes away and comes back. Callers hold c.mu.
func (c *Controller) reportRejections(nodeName string, ignored []ignoredCIDR) {
	prev := c.rejected[nodeName]
	now := make(map[string]string, len(ignored))
	for _, ig := range ignored {
		key := ig.PodCIDR + "\x00" + ig.Reason
		now[key] = ig.Kind
		if _, seen := prev[key]; seen {
			continue
		}
		klog.ErrorS(nil, "Ignoring pod CIDR", "node", nodeName, "podCIDR", ig.PodCIDR, "kind", ig.Kind, "reason", ig.Reason)
		if ro, ok := c.observer.(RejectObserver); ok {
			ro.ObserveRejectedCIDR(ig.Kind)
		}
	}
	if len(now) == 0 {
		delete(c.rejected, nodeName)
		return
	}
	c.rejected[nodeName] = now
}
