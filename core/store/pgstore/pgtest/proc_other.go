//go:build !linux

package pgtest

import "syscall"

// procAttr: outside Linux the cluster runs as the current user, which
// must not be root.
func procAttr(string) (*syscall.SysProcAttr, error) { return nil, nil }
