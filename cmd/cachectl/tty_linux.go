package main

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// claimTerminal makes this process the terminal's foreground process group,
// so the terminal's Ctrl-C (SIGINT) reaches it and its children only, not
// the processes that started it (make, go run): they then see it exit
// normally after its drain. It returns the function that gives the terminal
// back. Without a controlling terminal, or when this process is not in the
// foreground, it does nothing.
func claimTerminal() (restore func()) {
	noop := func() {}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return noop
	}
	var orig int32
	if ioctlPgrp(tty, syscall.TIOCGPGRP, &orig) != nil || int(orig) != syscall.Getpgrp() {
		tty.Close()
		return noop
	}
	if syscall.Setpgid(0, 0) != nil {
		tty.Close()
		return noop
	}
	// Setting the foreground group from a group that is not (yet) in the
	// foreground raises SIGTTOU; ignored, the call goes through.
	signal.Ignore(syscall.SIGTTOU)
	own := int32(syscall.Getpgrp())
	if ioctlPgrp(tty, syscall.TIOCSPGRP, &own) != nil {
		signal.Reset(syscall.SIGTTOU)
		tty.Close()
		return noop
	}
	return func() {
		_ = ioctlPgrp(tty, syscall.TIOCSPGRP, &orig)
		signal.Reset(syscall.SIGTTOU)
		tty.Close()
	}
}

func ioctlPgrp(tty *os.File, req uintptr, pgrp *int32) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, tty.Fd(), req, uintptr(unsafe.Pointer(pgrp))); e != 0 {
		return e
	}
	return nil
}
