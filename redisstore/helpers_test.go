package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
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

func ver(seq, pos uint64) cdc.Version { return cdc.NewVersion(seq, pos, 0) }

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

func rowJSON(id, n int) []byte { return []byte(fmt.Sprintf(`{"id":%d,"n":%d}`, id, n)) }
