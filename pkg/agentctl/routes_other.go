//go:build !linux

package agentctl

import "errors"

func netlinkRoutes(string) (RouteLister, func(), error) {
	return nil, nil, errors.New("reading routes needs Linux")
}
