package noderoute

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// ignoredCIDR is a pod CIDR of a Node that the controller leaves out, and
// why; State turns it into the local API's apiserver.IgnoredCIDR.
type ignoredCIDR struct {
	PodCIDR string
	// Kind is one of RejectKinds.
	Kind   string
	Reason string
}

// claimView is what decides which pod CIDRs of a remote Node are usable:
// this node's own subnets and the subnets other remote Nodes claim. The
// worker checks against its live claims (Controller.claimView), State
// against the published snapshot, with the same code, so that what
// agentctl reports is what the controller does.
type claimView struct {
	localNode    string
	localSubnets []podSubnet
	claims       *subnetIndex
}

// claimView returns the worker's live view. Callers hold c.mu.
func (c *Controller) claimView() claimView {
	return claimView{localNode: c.localNode, localSubnets: c.localSubnets, claims: c.claims}
}

// desiredSubnets computes, without side effects, the subnets of a remote Node
// that v allows and the pod CIDRs it leaves out, with the reason;
// blockedByRemote tells whether one was left out because another remote
// Node holds an overlapping CIDR.
func (v claimView) desiredSubnets(node *corev1.Node) (want []podSubnet, ignored []ignoredCIDR, blockedByRemote bool) {
	seen := map[string]bool{}
	for _, cidr := range nodePodCIDRs(node) {
		// One CIDR at a time, to tell which one an error is about.
		subnets, errs := parsePodSubnets([]string{cidr})
		for _, err := range errs {
			ignored = append(ignored, ignoredCIDR{PodCIDR: cidr, Kind: rejectKind(err), Reason: err.Error()})
		}
		for _, s := range subnets {
			if seen[s.key()] {
				continue
			}
			seen[s.key()] = true
			if len(v.localSubnets) > 0 && !hasFamilyOf(v.localSubnets, s) {
				ignored = append(ignored, ignoredCIDR{PodCIDR: s.key(), Kind: RejectFamily,
					Reason: fmt.Sprintf("this node has no %s pod CIDR", familyName(s))})
				continue
			}
			if owner, clash := v.clash(node.Name, s); clash != "" {
				kind := RejectOverlapRemote
				if owner == v.localNode {
					kind = RejectOverlapLocal
				}
				ignored = append(ignored, ignoredCIDR{PodCIDR: s.key(), Kind: kind, Reason: fmt.Sprintf("overlaps %s of node %s", clash, owner)})
				blockedByRemote = blockedByRemote || owner != v.localNode
				continue
			}
			want = append(want, s)
		}
	}
	return want, ignored, blockedByRemote
}

// clash returns the owner and CIDR of a subnet that s overlaps: this node's
// own, or another remote Node's claimed one.
func (v claimView) clash(nodeName string, s podSubnet) (owner, cidr string) {
	for _, l := range v.localSubnets {
		if overlaps(l.CIDR, s.CIDR) {
			return v.localNode, l.key()
		}
	}
	if owner, claim, ok := v.claims.overlapping(s.CIDR, nodeName); ok {
		return owner, claim.String()
	}
	return "", ""
}

// planBatch plans the remote Nodes of a batch in the order of names (nodes
// holds them by name, nil for a deleted one) and returns that order and the
// subnets each is to have. Each Node's wanted subnets are claimed in
// c.claims as it is planned, so that Nodes later in the batch are checked
// against them. Callers hold c.mu.
func (c *Controller) planBatch(names []string, nodes map[string]*corev1.Node) (order []string, plan map[string][]podSubnet) {
	order = make([]string, 0, len(nodes))
	plan = make(map[string][]podSubnet, len(nodes))
	for _, name := range names {
		node, ok := nodes[name]
		if !ok {
			continue
		}
		delete(nodes, name) // a name listed twice is planned once
		var want []podSubnet
		if node != nil {
			want = c.planNode(node)
		} else {
			c.reportRejections(name, nil)
			delete(c.blocked, name)
		}
		order = append(order, name)
		plan[name] = want
		// Claimed with what it still has: a CIDR it gives up stays
		// its own until its route is gone (recordInstalled), so no
		// Node later in the batch takes it over while its old route
		// and responder are still there; that Node waits (blocked)
		// and is synced again once the CIDR is released.
		c.claims.set(name, unionSubnets(want, c.installed[name]))
	}
	return order, plan
}

// planNode returns the Node's usable pod subnets (desiredSubnets against
// the live claims) and, unlike desiredSubnets, records the outcome: it logs
// and counts the CIDRs it leaves out (reportRejections) and marks the Node
// blocked or not. Callers hold c.mu.
func (c *Controller) planNode(node *corev1.Node) []podSubnet {
	if len(nodePodCIDRs(node)) == 0 {
		klog.V(2).InfoS("Node has no pod CIDR yet, waiting", "node", node.Name)
		c.reportRejections(node.Name, nil)
		delete(c.blocked, node.Name)
		return nil
	}
	want, ignored, blockedByRemote := c.claimView().desiredSubnets(node)
	c.reportRejections(node.Name, ignored)
	if blockedByRemote {
		c.blocked[node.Name] = true
	} else {
		delete(c.blocked, node.Name)
	}
	return want
}

// updateLocalSubnets records this node's pod CIDRs and, when they change,
// re-checks every remote Node against them. Callers hold c.mu.
func (c *Controller) updateLocalSubnets(node *corev1.Node) {
	subnets, errs := parsePodSubnets(nodePodCIDRs(node))
	for _, err := range errs {
		klog.ErrorS(err, "Local node has an unusable pod CIDR", "node", node.Name)
	}
	if sameSubnets(subnets, c.localSubnets) {
		return
	}
	c.localSubnets = subnets
	// Every remote Node again: overlaps with our CIDRs and the address
	// families we accept both depend on them.
	nodes, err := c.lister.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Cannot list Nodes to re-check them against this node's new pod CIDRs")
	}
	for _, n := range nodes {
		if n.Name != c.localNode {
			c.queue.Add(n.Name)
		}
	}
	for other := range c.installed {
		c.queue.Add(other)
	}
}
