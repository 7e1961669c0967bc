//go:build !linux

package main

// claimTerminal does nothing here: Ctrl-C reaches the whole process group.
func claimTerminal() (restore func()) { return func() {} }
