// Package testredis is test support for tests that need a real Redis: a
// client of the machine's shared Redis with a key prefix of the test's own
// (its keys deleted when the test ends), and private redis-server child
// processes for tests that stop, restart or flush their Redis.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testproc"
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
// for tests that stop or restart it: Addr, Kill and Restart come from
// testproc (a restarted server is empty unless it is durable, and answers
// once it has read its append-only file back). It is killed when the test
// ends. Its methods must be called from the test's goroutine.
type Server struct{ *testproc.Process }

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
	dir := tb.TempDir()
	aof := []string{"--appendonly", "no"}
	if durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	}
	return &Server{testproc.Start(tb, testproc.Spec{
		Name: "redis-server",
		Command: func(port int) *exec.Cmd {
			return exec.Command("redis-server", append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--dir", dir}, aof...)...)
		},
		Ready: func(addr string) error {
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			defer c.Close()
			return c.Ping(context.Background()).Err()
		},
		Wait: 20 * time.Second, // a durable server answers LOADING until its file is read
	})}
}

// URL returns the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }
