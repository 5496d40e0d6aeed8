//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
)

// dataPlane is what one node holds of ours: the gateway IPs its responders
// answer (ARP in table 20 for IPv4, NDP in table 21 for IPv6), and its
// routes with our protocol, both families (destination -> gateway).
type dataPlane struct {
	Responders []string
	Routes     map[string]string
	// Rounds are the cookie rounds seen in the agent's flows.
	Rounds []string
	Raw    string
}

var (
	arpTpaRE   = regexp.MustCompile(`table=20, priority=200,arp,arp_tpa=([0-9.]+),arp_op=1 `)
	ndTargetRE = regexp.MustCompile(`table=21, priority=200,icmp6,icmp_type=135,nd_target=([0-9a-f:]+) `)
	cookieRE   = regexp.MustCompile(`cookie=0x([0-9a-f]+)`)
	routeRE    = regexp.MustCompile(`^(\S+) via (\S+) `)
)

func readDataPlane(ctx context.Context, p Provider, node string) (dataPlane, error) {
	flows, err := p.Exec(ctx, node, "ovs-ofctl", "dump-flows", "br-int", "--no-stats")
	if err != nil {
		return dataPlane{}, fmt.Errorf("dump flows on %s: %w: %s", node, err, flows)
	}
	routes, err := p.Exec(ctx, node, "ip", "route", "show", "proto", "94")
	if err != nil {
		return dataPlane{}, fmt.Errorf("list routes on %s: %w: %s", node, err, routes)
	}
	routes6, err := p.Exec(ctx, node, "ip", "-6", "route", "show", "proto", "94")
	if err != nil {
		return dataPlane{}, fmt.Errorf("list IPv6 routes on %s: %w: %s", node, err, routes6)
	}
	dp := dataPlane{Routes: map[string]string{}, Raw: flows + "\n" + routes + "\n" + routes6}
	rounds := map[string]bool{}
	for _, l := range strings.Split(flows, "\n") {
		if m := arpTpaRE.FindStringSubmatch(l); m != nil {
			dp.Responders = append(dp.Responders, m[1])
		}
		if m := ndTargetRE.FindStringSubmatch(l); m != nil {
			dp.Responders = append(dp.Responders, m[1])
		}
		if m := cookieRE.FindStringSubmatch(l); m != nil && len(m[1]) > 12 {
			rounds[m[1][:len(m[1])-12]] = true
		}
	}
	for r := range rounds {
		dp.Rounds = append(dp.Rounds, r)
	}
	sort.Strings(dp.Rounds)
	sort.Strings(dp.Responders)
	for _, l := range strings.Split(routes+"\n"+routes6, "\n") {
		if m := routeRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			dp.Routes[m[1]] = m[2]
		}
	}
	return dp, nil
}

// nodeCIDRs reads every Node's pod CIDRs from the API.
func nodeCIDRs(ctx context.Context, p Provider) (map[string][]string, error) {
	out, err := p.Kubectl(ctx, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("kubectl get nodes: %w: %s", err, out)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ PodCIDRs []string }
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode kubectl output: %w", err)
	}
	cidrs := map[string][]string{}
	for _, n := range list.Items {
		cidrs[n.Metadata.Name] = n.Spec.PodCIDRs
	}
	return cidrs, nil
}

// gatewayOf returns the first address of a pod CIDR, either family.
func gatewayOf(n *net.IPNet) net.IP {
	gw := append(net.IP(nil), n.IP.Mask(n.Mask)...)
	gw[len(gw)-1]++
	return gw
}

// wanted is what node should hold given every Node's CIDRs: a responder and
// a route for each pod CIDR, IPv4 or IPv6, of every other Node.
func wanted(node string, cidrs map[string][]string) dataPlane {
	dp := dataPlane{Routes: map[string]string{}}
	for other, list := range cidrs {
		if other == node {
			continue
		}
		for _, c := range list {
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				continue
			}
			gw := gatewayOf(n).String()
			dp.Responders = append(dp.Responders, gw)
			dp.Routes[n.String()] = gw
		}
	}
	sort.Strings(dp.Responders)
	return dp
}

func (d dataPlane) sameAs(o dataPlane) bool {
	if strings.Join(d.Responders, ",") != strings.Join(o.Responders, ",") || len(d.Routes) != len(o.Routes) {
		return false
	}
	for k, v := range d.Routes {
		if o.Routes[k] != v {
			return false
		}
	}
	return true
}

func (d dataPlane) String() string {
	var routes []string
	for k, v := range d.Routes {
		routes = append(routes, k+" via "+v)
	}
	sort.Strings(routes)
	return fmt.Sprintf("responders %v, routes %v, rounds %v", d.Responders, routes, d.Rounds)
}
