//go:build !linux

package localapi

import "os/exec"

func spawn(cmd *exec.Cmd) error { return cmd.Start() }
