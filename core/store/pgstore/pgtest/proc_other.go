//go:build !linux

package pgtest

import "syscall"

// procAttr: outside Linux the cluster runs as the current user, which
// must not be root.
func procAttr(string) (*syscall.SysProcAttr, error) { return nil, nil }

// processAlive: outside Linux a cluster directory is never taken for stale.
func processAlive(int) bool { return true }
