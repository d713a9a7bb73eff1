//go:build !unix

package agent

import (
	"os"
	"os/exec"
)

// newProcessGroup does nothing where process groups do not exist.
func newProcessGroup(cmd *exec.Cmd) {}

// terminate stops p; without signals that means killing it.
func terminate(p *os.Process) error { return p.Kill() }

// terminateGroup stops p.
func terminateGroup(p *os.Process) error { return p.Kill() }

// killGroup kills p.
func killGroup(p *os.Process) error { return p.Kill() }

// notifyReload returns a channel that never receives: there is no SIGHUP.
func notifyReload() (reload <-chan struct{}, stop func()) { return nil, func() {} }
