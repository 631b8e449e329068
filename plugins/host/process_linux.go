package host

import (
	"errors"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// processAttributes puts the plugin in its own process group and has the
// kernel send it SIGTERM when the host dies.
//
// NOTE: Linux sends the death signal when the thread that started the child
// exits, not the whole process. Go keeps its threads unless a goroutine ends
// while locked to one with runtime.LockOSThread, so a plugin can get SIGTERM
// while nexus still runs if such a goroutine ran on that thread. The SDK also
// watches its parent pid, which covers a missed signal but not a spurious one.
func processAttributes() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// reapGroup waits for cmd's process to exit without reaping it, kills what
// is left of its process group, and then reaps it. While the exited process
// is not reaped its pid, which is the group id, cannot be given to another
// process, so the SIGKILL cannot reach an unrelated group.
func reapGroup(cmd *exec.Cmd) error {
	pid := cmd.Process.Pid
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}

	killGroup(pid)
	return cmd.Wait()
}
