//go:build !linux

package testenv

import "syscall"

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killTree SIGKILLs pid's process group. Without /proc, descendants that
// left the group are not found.
func killTree(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// markedProcs finds nothing: reading other processes' environment needs
// /proc.
func markedProcs([]byte) []int { return nil }
