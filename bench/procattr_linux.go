package main

import (
	"os/exec"
	"syscall"
)

// tieToParent makes the kernel send cmd SIGTERM when the harness dies,
// even by SIGKILL, so that no server outlives it.
func tieToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
