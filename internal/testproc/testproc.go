// Package testproc runs a test's private server as a child process on a
// free loopback port: started and waited on until it answers, killed at
// once (SIGKILL) as a crash would, restarted on the same port, and killed
// when the test ends. testredis and testmemcache build on it.
package testproc

import (
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Spec says how to run one kind of server.
type Spec struct {
	// Name names the server in failure messages ("redis-server").
	Name string
	// Command builds the command for one start on port; it is called
	// again for every restart.
	Command func(port int) *exec.Cmd
	// Ready returns nil once the server at addr answers.
	Ready func(addr string) error
	// Wait bounds how long a start waits for Ready.
	Wait time.Duration
}

// Process is a running (or killed) private server. Its methods must be
// called from the test's goroutine.
type Process struct {
	tb     testing.TB
	spec   Spec
	port   int
	cmd    *exec.Cmd     // nil while killed
	out    bytes.Buffer  // the process's output; read only after exited is closed
	exited chan struct{} // closed when cmd has exited
}

// Start picks a free loopback port, starts the server there and waits
// until it answers; the test fails when it cannot. The server is killed
// when the test ends.
func Start(tb testing.TB, spec Spec) *Process {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	p := &Process{tb: tb, spec: spec, port: port}
	tb.Cleanup(p.Kill) // first, so a start that fails is cleaned up too
	p.start()
	return p
}

// Addr returns the server's host:port.
func (p *Process) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// Kill stops the server at once (SIGKILL), as a crash would. Killing a
// killed server does nothing.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// Restart kills the server if it runs, starts it again on the same port
// and waits until it answers.
func (p *Process) Restart() {
	p.tb.Helper()
	p.Kill()
	p.start()
}

func (p *Process) start() {
	p.tb.Helper()
	p.out.Reset()
	p.cmd = p.spec.Command(p.port)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		p.cmd = nil
		p.tb.Fatalf("start %s (is it installed?): %v", p.spec.Name, err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	deadline := time.Now().Add(p.spec.Wait)
	for {
		err := p.spec.Ready(p.Addr())
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			p.cmd = nil
			p.tb.Fatalf("private %s on %s exited at start: %s", p.spec.Name, p.Addr(), p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("private %s on %s not answering: %v", p.spec.Name, p.Addr(), err)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
