package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// newTestStore builds a Store and closes it at the end of the test.
func newTestStore(tb testing.TB, c redis.UniversalClient, cfg *cdc.Config, opts Options) *Store {
	tb.Helper()
	s := New(c, cfg, opts)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func ver(seq, pos uint64) cdc.Version { return storetest.Ver(seq, pos) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func rowJSON(id, n int) []byte { return storetest.RowJSON(id, n) }

// backend is the Redis store for the shared tests of internal/storetest.
type backend struct {
	c      *redis.Client
	prefix string
}

// sharedBackend is a backend on the machine's Redis under a prefix of the
// test's own.
func sharedBackend(t *testing.T) backend {
	c, prefix := testredis.Shared(t)
	return backend{c: c, prefix: prefix}
}

func (b backend) Prefix() string { return b.prefix }

func (b backend) Open(tb testing.TB, cfg *cdc.Config) storetest.Store {
	return newTestStore(tb, b.c, cfg, Options{})
}

func (b backend) Seed(tb testing.TB, key string, rec map[string]string, ttl time.Duration) bool {
	ctx := context.Background()
	if err := b.c.HSet(ctx, key, rec).Err(); err != nil {
		tb.Fatal(err)
	}
	if ttl > 0 {
		b.c.PExpire(ctx, key, ttl)
	}
	return true
}

func (b backend) Get(tb testing.TB, key string) (map[string]string, time.Duration) {
	ctx := context.Background()
	got, err := b.c.HGetAll(ctx, key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	pttl, err := b.c.PTTL(ctx, key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return got, max(pttl, 0)
}
