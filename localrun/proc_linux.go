package localrun

import "syscall"

// childProcAttr puts the function in a process group of its own and has
// the kernel stop it (SIGTERM) should the run die without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
