//go:build !linux

package main

import "os/exec"

// tieToParent does nothing where the kernel cannot signal a child when
// its parent dies; stopAll still stops every server on a normal exit.
func tieToParent(*exec.Cmd) {}
