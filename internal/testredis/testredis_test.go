package testredis

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestSharedPrefixIsUniqueAndCleaned(t *testing.T) {
	ctx := context.Background()
	var c *redis.Client
	var prefix string
	t.Run("writer", func(t *testing.T) {
		var other string
		c, prefix = Shared(t)
		_, other = Shared(t)
		if prefix == other || !strings.HasPrefix(prefix, "test:") || !strings.HasSuffix(prefix, ":") {
			t.Fatalf("prefixes %q and %q", prefix, other)
		}
		for _, k := range []string{"a", "b", "c:d"} {
			if err := c.Set(ctx, prefix+k, "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	check, _ := Shared(t)
	n, err := check.Exists(ctx, prefix+"a", prefix+"b", prefix+"c:d").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d keys under %s left after the subtest", n, prefix)
	}
}

func TestPrivateKillRestart(t *testing.T) {
	ctx := context.Background()
	s := StartPrivate(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL %q", s.URL())
	}
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("killed server answered")
	}
	s.Restart()
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("restarted server kept data: %v", err)
	}
	s.Restart() // from running
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// A durable server keeps an acknowledged write across a crash and restart.
func TestDurableKeepsWrites(t *testing.T) {
	ctx := context.Background()
	s := StartDurable(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	s.Restart()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after a crash and restart: %q %v, want v", got, err)
	}
}
