//go:build unix && !linux

package host

import (
	"os/exec"
	"syscall"
)

// processAttributes puts the plugin in its own process group. Outside Linux
// there is no parent-death signal, so the SDK's parent pid watch alone ends
// a plugin whose host died.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// reapGroup waits for cmd's process, then kills what is left of its process
// group.
//
// NOTE: the group is killed after the process was reaped, so in the short
// time between the two its pid could be reused by an unrelated group leader.
func reapGroup(cmd *exec.Cmd) error {
	err := cmd.Wait()
	killGroup(cmd.Process.Pid)
	return err
}
