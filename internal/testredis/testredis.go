// Package testredis is test support for tests that need a real Redis: a
// client of the machine's shared Redis with a key prefix of the test's own
// (its keys deleted when the test ends), and private redis-server child
// processes for tests that stop, restart or flush their Redis.
package testredis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SharedAddr is the address of the machine's Redis, shared by every test.
const SharedAddr = "127.0.0.1:6379"

// Shared returns a client of the Redis at SharedAddr and a key prefix no
// other test uses. The test fails (it never skips) when Redis does not
// answer. When the test ends, the keys under the prefix are deleted (SCAN
// and DEL, never FLUSH: other tests share this Redis) and the client is
// closed; cleanups the test registers later, such as closing a store that
// flushes a checkpoint, run before that.
func Shared(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: SharedAddr})
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		tb.Fatalf("the tests need Redis on %s: %v", SharedAddr, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	// Hex only: no glob characters, so the prefix is its own SCAN pattern.
	prefix := "test:" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		if err := deletePrefix(c, prefix); err != nil {
			tb.Errorf("deleting the keys under %s: %v", prefix, err)
		}
	})
	return c, prefix
}

// deletePrefix deletes every key under prefix, which holds no glob
// characters.
func deletePrefix(c *redis.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// Server is a private redis-server child process on a free loopback port,
// for tests that stop or restart it. It is killed when the test ends. Its
// methods must be called from the test's goroutine.
type Server struct {
	tb      testing.TB
	port    int
	dir     string
	durable bool          // an append-only file keeps its data across Kill and Restart
	cmd     *exec.Cmd     // nil while killed
	out     bytes.Buffer  // the process's output; read only after exited is closed
	exited  chan struct{} // closed when cmd has exited
}

// StartPrivate starts a private redis-server without persistence and waits
// until it answers.
func StartPrivate(tb testing.TB) *Server {
	tb.Helper()
	return startPrivate(tb, false)
}

// StartDurable starts a private redis-server that writes an append-only
// file (fsync every second), so a crash (Kill) and Restart keep every
// acknowledged write, as a managed Redis with persistence or a replica
// failover does; and waits until it answers.
func StartDurable(tb testing.TB) *Server {
	tb.Helper()
	return startPrivate(tb, true)
}

func startPrivate(tb testing.TB, durable bool) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{tb: tb, port: port, dir: tb.TempDir(), durable: durable}
	tb.Cleanup(s.Kill) // first, so a start that fails is cleaned up too
	s.start()
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Kill stops the server at once (SIGKILL), as a crash would. Killing a
// killed server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart kills the server if it runs and starts it again on the same port,
// empty unless it is durable, and waits until it answers (a durable one once
// it has read its append-only file back).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

func (s *Server) start() {
	s.tb.Helper()
	s.out.Reset()
	aof := []string{"--appendonly", "no"}
	if s.durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	}
	s.cmd = exec.Command("redis-server", append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--dir", s.dir}, aof...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.tb.Fatalf("start redis-server (is it installed?): %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second) // a durable server answers LOADING until its file is read
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-s.exited:
			s.cmd = nil
			s.tb.Fatalf("private redis-server on %s exited at start: %s", s.Addr(), s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("private redis-server on %s not answering: %v", s.Addr(), err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
