package agentctl

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/noderoute/noderoute/pkg/agent/apiserver"
	"github.com/noderoute/noderoute/pkg/agentctl/ofctl"
	"github.com/noderoute/noderoute/pkg/ovs/openflow"
)

// nodeIndex maps gateway IPs and pod CIDRs to the remote Nodes they belong
// to, from what the agent wants and what it has installed.
type nodeIndex struct {
	byGateway map[string]string
	byCIDR    map[string]string
}

func newNodeIndex(st *apiserver.State) nodeIndex {
	ix := nodeIndex{byGateway: map[string]string{}, byCIDR: map[string]string{}}
	if st == nil {
		return ix
	}
	for _, n := range st.RemoteNodes {
		// Installed first, so that what the Node wants now wins.
		for _, s := range append(append([]apiserver.Subnet(nil), n.Installed...), n.Desired...) {
			gw := s.GatewayIP
			if ip := net.ParseIP(gw); ip != nil {
				gw = ip.String()
			}
			ix.byGateway[gw] = n.Name
			ix.byCIDR[s.PodCIDR] = n.Name
		}
	}
	return ix
}

// flowNode returns the remote Node a per-gateway flow answers for: the
// owner of the gateway in the field openflow.GatewayMatchField names for
// the flow's cookie category (an ARP responder's arp_tpa, category 0x02;
// an NDP responder's nd_target, category 0x03). Other flows belong to no
// Node.
func (ix nodeIndex) flowNode(f *ofctl.Flow) string {
	field, ok := openflow.GatewayMatchField(openflow.DecodeCookie(f.Cookie).Category)
	if !ok {
		return ""
	}
	gw, ok := f.MatchField(field)
	if !ok {
		return ""
	}
	// ovs-ofctl and Go both print IPv6 addresses compressed (RFC 5952),
	// but compare parsed addresses rather than trust that.
	if ip := net.ParseIP(gw); ip != nil {
		gw = ip.String()
	}
	return ix.byGateway[gw]
}

// checkNodeName tells why --node name cannot select anything, or nil.
func checkNodeName(st *apiserver.State, name string) error {
	if name == st.NodeName {
		return fmt.Errorf("%s is the node the agent runs on: there are no flows or routes to it, only to the other Nodes", name)
	}
	if st.RemoteNode(name) == nil {
		var names []string
		for _, n := range st.RemoteNodes {
			names = append(names, n.Name)
		}
		sort.Strings(names)
		known := "none"
		if len(names) > 0 {
			known = strings.Join(names, ", ")
		}
		return fmt.Errorf("the agent on %s knows no remote Node %q (remote Nodes: %s)", st.NodeName, name, known)
	}
	return nil
}
