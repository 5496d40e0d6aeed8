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

// dataPlane is what one node holds of ours: the gateway IPs its table 20
// answers, and its routes with our protocol (destination -> gateway).
type dataPlane struct {
	Responders []string
	Routes     map[string]string
	// Rounds are the cookie rounds seen in table 20.
	Rounds []string
	Raw    string
}

var (
	arpTpaRE = regexp.MustCompile(`priority=200,arp,arp_tpa=([0-9.]+),arp_op=1 `)
	cookieRE = regexp.MustCompile(`cookie=0x([0-9a-f]+)`)
	routeRE  = regexp.MustCompile(`^(\S+) via (\S+) `)
)

func readDataPlane(ctx context.Context, p Provider, node string) (dataPlane, error) {
	flows, err := p.Exec(ctx, node, "ovs-ofctl", "dump-flows", "br-int", "table=20", "--no-stats")
	if err != nil {
		return dataPlane{}, fmt.Errorf("dump table 20 on %s: %w: %s", node, err, flows)
	}
	routes, err := p.Exec(ctx, node, "ip", "route", "show", "proto", "94")
	if err != nil {
		return dataPlane{}, fmt.Errorf("list routes on %s: %w: %s", node, err, routes)
	}
	dp := dataPlane{Routes: map[string]string{}, Raw: flows + "\n" + routes}
	rounds := map[string]bool{}
	for _, l := range strings.Split(flows, "\n") {
		if m := arpTpaRE.FindStringSubmatch(l); m != nil {
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
	for _, l := range strings.Split(routes, "\n") {
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

// wanted is what node should hold given every Node's CIDRs: a responder and
// a route for each IPv4 CIDR of every other Node.
func wanted(node string, cidrs map[string][]string) dataPlane {
	dp := dataPlane{Routes: map[string]string{}}
	for other, list := range cidrs {
		if other == node {
			continue
		}
		for _, c := range list {
			ip, n, err := net.ParseCIDR(c)
			if err != nil || ip.To4() == nil {
				continue
			}
			gw := n.IP.To4()
			gw = net.IPv4(gw[0], gw[1], gw[2], gw[3]+1).To4()
			dp.Responders = append(dp.Responders, gw.String())
			dp.Routes[n.String()] = gw.String()
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
