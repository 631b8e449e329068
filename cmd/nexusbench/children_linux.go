package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the child when the benchmark
// process dies, even by SIGKILL, when no deferred cleanup runs. The kernel
// ties the signal to the OS thread that started the child. The Go runtime
// ends a thread only when a goroutine locked to it exits, and this program
// locks no goroutine to a thread.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
