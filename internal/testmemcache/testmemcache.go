// Package testmemcache starts private memcached child processes for tests:
// one per test (or several, for a ring of nodes) on free loopback ports,
// run with -M as production must be, so a test may fill, kill or restart
// its memcached without touching anyone else's. memcached has no way to
// delete keys by prefix, so tests never share one.
package testmemcache

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testproc"
)

// Server is a private memcached on a free loopback port, killed when the
// test ends: Addr, Kill (memcached keeps nothing) and Restart (empty, on the
// same port) come from testproc. Its methods must be called from the test's
// goroutine.
type Server struct{ *testproc.Process }

// Start starts a private memcached with 64 MB and -M (answer "out of
// memory" rather than evict) and waits until it answers. The test fails,
// never skips, when memcached is not installed.
func Start(tb testing.TB) *Server { return StartSize(tb, 64) }

// StartSize is Start with megs MB of memory.
func StartSize(tb testing.TB, megs int) *Server {
	tb.Helper()
	path, err := exec.LookPath("memcached")
	if err != nil {
		tb.Fatalf("the tests need memcached (make services installs it with apt-get): %v", err)
	}
	return &Server{testproc.Start(tb, testproc.Spec{
		Name: "memcached",
		Command: func(port int) *exec.Cmd {
			args := []string{"-M", "-m", strconv.Itoa(megs), "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-c", "1024"}
			if os.Geteuid() == 0 {
				args = append(args, "-u", "root") // memcached refuses root without -u
			}
			return exec.Command(path, args...)
		},
		Ready: func(addr string) error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err
		},
		Wait: 10 * time.Second,
	})}
}
