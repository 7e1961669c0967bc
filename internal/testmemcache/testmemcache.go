// Package testmemcache starts private memcached child processes for tests:
// one per test (or several, for a ring of nodes) on free loopback ports,
// run with -M as production must be, so a test may fill, kill or restart
// its memcached without touching anyone else's. memcached has no way to
// delete keys by prefix, so tests never share one.
package testmemcache

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is a private memcached on a free loopback port, killed when the
// test ends. Its methods must be called from the test's goroutine.
type Server struct {
	tb     testing.TB
	port   int
	megs   int
	cmd    *exec.Cmd     // nil while killed
	out    bytes.Buffer  // the process's output; read only after exited is closed
	exited chan struct{} // closed when cmd has exited
}

// Start starts a private memcached with 64 MB and -M (answer "out of
// memory" rather than evict) and waits until it answers. The test fails,
// never skips, when memcached is not installed.
func Start(tb testing.TB) *Server { return StartSize(tb, 64) }

// StartSize is Start with megs MB of memory.
func StartSize(tb testing.TB, megs int) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{tb: tb, port: port, megs: megs}
	tb.Cleanup(s.Kill)
	s.start()
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Kill stops the server at once (SIGKILL), as a crash would: memcached keeps
// nothing. Killing a killed server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart kills the server if it runs and starts it again, empty, on the
// same port, and waits until it answers.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

func (s *Server) start() {
	s.tb.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		s.tb.Fatalf("the tests need memcached (make services installs it with apt-get): %v", err)
	}
	s.out.Reset()
	args := []string{"-M", "-m", strconv.Itoa(s.megs), "-l", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", "0", "-c", "1024"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses root without -u
	}
	s.cmd = exec.Command(path, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.tb.Fatalf("start memcached: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-s.exited:
			s.cmd = nil
			s.tb.Fatalf("private memcached on %s exited at start: %s", s.Addr(), s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("private memcached on %s not answering: %v", s.Addr(), err)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
