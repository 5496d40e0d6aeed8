//go:build !linux

package agentctl

import "errors"

func netlinkGateway(string, string) (*GatewayInterface, error) {
	return nil, errors.New("reading the gateway interface needs Linux")
}
