package main

import (
	"fmt"
	"time"

	"github.com/noderoute/noderoute/pkg/ovs/ovsdaemon"
)

// ovsStopGrace is how long each OVS daemon may take to exit on SIGTERM.
const ovsStopGrace = 15 * time.Second

func (s *settings) nodeOVS() (*ovsdaemon.Instance, error) {
	if s.node == "" {
		return nil, fmt.Errorf("--node is required")
	}
	return ovsdaemon.New(s.layout.OVSDir(s.node))
}

// cmdOVSStart starts the node's ovsdb-server and ovs-vswitchd on a fresh
// database, detached; run inside the node's namespace, so that the
// bridge's tap devices (antrea-gw0 included) appear there.
func cmdOVSStart(s *settings, _ []string) error {
	ovs, err := s.nodeOVS()
	if err != nil {
		return err
	}
	if err := ovs.StartDetached(); err != nil {
		return fmt.Errorf("OVS of %s: %w", s.node, err)
	}
	return nil
}

// cmdOVSStop stops the node's OVS daemons, vswitchd first.
func cmdOVSStop(s *settings, _ []string) error {
	ovs, err := s.nodeOVS()
	if err != nil {
		return err
	}
	if err := ovs.StopDetached(ovsStopGrace); err != nil {
		return fmt.Errorf("OVS of %s: %w", s.node, err)
	}
	return nil
}
