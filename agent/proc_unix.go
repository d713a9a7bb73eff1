//go:build unix

package agent

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// newProcessGroup makes cmd the leader of a process group of its own, so
// that a terminal's Ctrl-C reaches only the agent (which then stops its
// runs in order) and a run's command can be stopped with every process it
// started.
func newProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminate asks p to stop (SIGTERM).
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// terminateGroup sends SIGTERM to the process group p leads.
func terminateGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the process group p leads.
func killGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }

// notifyReload returns a channel that receives on SIGHUP, until stop is
// called. Signals that arrive while one is pending are merged into it.
func notifyReload() (reload <-chan struct{}, stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				select {
				case out <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() { signal.Stop(sigs); close(done) }
}
