//go:build unix && !linux

package localrun

import "syscall"

// childProcAttr puts the function in a process group of its own.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
