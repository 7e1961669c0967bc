package testproc

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the child process: with
// TESTPROC_PORT set it listens there and accepts until killed.
func TestMain(m *testing.M) {
	if port := os.Getenv("TESTPROC_PORT"); port != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			os.Exit(3)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(4)
			}
			_ = c.Close()
		}
	}
	os.Exit(m.Run())
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// TestStartKillRestart: the server answers after Start, not after Kill, and
// again on the same address after Restart; a second Kill does nothing.
func TestStartKillRestart(t *testing.T) {
	starts := 0
	p := Start(t, Spec{
		Name: "listener",
		Command: func(port int) *exec.Cmd {
			starts++
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "TESTPROC_PORT="+strconv.Itoa(port))
			return cmd
		},
		Ready: dial,
		Wait:  20 * time.Second,
	})
	addr := p.Addr()
	if err := dial(addr); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	p.Kill()
	if err := dial(addr); err == nil {
		t.Fatal("after Kill the server still answers")
	}
	p.Kill()
	p.Restart()
	if p.Addr() != addr {
		t.Fatalf("restarted on %s, not %s", p.Addr(), addr)
	}
	if err := dial(addr); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if starts != 2 {
		t.Fatalf("Command called %d times, want 2", starts)
	}
}
