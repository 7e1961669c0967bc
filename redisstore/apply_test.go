package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

const (
	testTableTTL = storetest.TableTTL
	testTombTTL  = storetest.TombTTL
)

func testConfig(prefix string) *cdc.Config { return storetest.Config(prefix) }

// The apply rules and sequences of the design, shared with every store.
func TestApplyRules(t *testing.T)      { storetest.Rules(t, sharedBackend(t)) }
func TestApplySequences(t *testing.T)  { storetest.Sequences(t, sharedBackend(t)) }
func TestApplyOnlyListed(t *testing.T) { storetest.OnlyListed(t, sharedBackend(t)) }
func TestApplyInvalid(t *testing.T)    { storetest.Invalid(t, sharedBackend(t)) }

// checkRecord compares a record and its TTL (0: none) with what is expected.
func checkRecord(t *testing.T, c *redis.Client, name, key string, want map[string]string, ttl time.Duration) {
	t.Helper()
	storetest.CheckRecord(t, backend{c: c}, name, key, want, ttl)
}

func TestApplyCancelledCaller(t *testing.T) {
	c, prefix := testredis.Shared(t)
	s := newTestStore(t, c, testConfig(prefix), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := prefix + "db.rep:1"
	ch := cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: ver(1, 1), Row: rowJSON(1, 1)}
	if _, err := s.Apply(ctx, ch); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	// Whether or not it went out, applying it again converges.
	out, err := s.Apply(context.Background(), ch)
	if err != nil || (out != cdc.OutcomeApplied && out != cdc.OutcomeStale) {
		t.Fatalf("retry: %v %v", out, err)
	}
	checkRecord(t, c, "retry", key, map[string]string{"v": string(ver(1, 1)), "d": string(rowJSON(1, 1))}, testTableTTL)
}

func TestApplyAfterClose(t *testing.T) {
	c, prefix := testredis.Shared(t)
	s := New(c, testConfig(prefix), Options{})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ch := cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: prefix + "db.rep:1", Version: ver(1, 1), Row: rowJSON(1, 1)}
	if _, err := s.Apply(context.Background(), ch); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if res := s.ApplyBatch(context.Background(), []cdc.Change{ch}); !errors.Is(res[0].Err, ErrClosed) {
		t.Fatalf("ApplyBatch after Close: %v", res[0].Err)
	}
}

// ApplyCommand must call the script exactly as the store does: the record it
// writes is the store's, and the store's version check then holds against it.
func TestApplyCommandMatchesStore(t *testing.T) {
	c, prefix := testredis.Shared(t)
	s := newTestStore(t, c, testConfig(prefix), Options{})
	ctx := context.Background()
	key := prefix + "db.rep:cmd"
	src, keys, args := ApplyCommand(prefix, "db.rep", key, ver(2, 50), rowJSON(7, 1))
	argv := make([]any, len(args))
	for i, a := range args {
		argv[i] = a
	}
	if codes, err := c.Eval(ctx, src, keys, argv...).Int64Slice(); err != nil || len(codes) != 1 || codes[0] != codeWritten {
		t.Fatalf("script via ApplyCommand: codes %v, %v", codes, err)
	}
	checkRecord(t, c, "via ApplyCommand", key, map[string]string{"v": string(ver(2, 50)), "d": string(rowJSON(7, 1))}, 0)
	out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: ver(2, 40), Row: rowJSON(7, 2)})
	if err != nil || out != cdc.OutcomeStale {
		t.Fatalf("older change after ApplyCommand's write: %v %v, want stale", out, err)
	}
}

// One script call carries a whole batch, yet each change keeps its own
// outcome: in order (a later change to the same key sees the earlier one),
// against its own table's watermark, and a key of another type fails only
// its own change.
func TestApplyBatchOwnResults(t *testing.T) {
	srv := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	s := newTestStore(t, c, testConfig(""), Options{MaxBatch: 4})
	// Load the script, so no NOSCRIPT retry counts below.
	if _, err := s.Apply(ctx, cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: "db.rep:warm", Version: ver(1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "db.rep:a", "v", string(ver(1, 10)), "d", `{"id":"a"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "db.rep:str", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, TruncatedKey(""), "db.rep0", string(ver(5, 0))).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	up := func(table, key string, v cdc.Version, n int) cdc.Change {
		return cdc.Change{Op: cdc.OpUpdate, Table: table, Key: key, Version: v, Row: rowJSON(n, n)}
	}
	changes := []cdc.Change{
		up("db.rep", "db.rep:a", ver(1, 5), 1),
		up("db.rep", "db.rep:a", ver(1, 20), 2),
		up("db.rep", "db.rep:str", ver(1, 20), 3),
		up("db.rep", "db.rep:a", ver(1, 15), 4),
		{Op: cdc.OpDelete, Table: "db.rep", Key: "db.rep:b", Version: ver(1, 1)},
		up("db.ref", "db.ref:r", ver(1, 1), 5),
		up("db.rep0", "db.rep0:x", ver(4, 0), 6),
		up("db.rep0", "db.rep0:y", ver(6, 0), 7),
		up("db.rep", "db.rep:a", ver(1, 21), 8),
	}
	want := []cdc.Outcome{cdc.OutcomeStale, cdc.OutcomeApplied, cdc.OutcomeFailed, cdc.OutcomeStale,
		cdc.OutcomeDeleted, cdc.OutcomeIgnored, cdc.OutcomeStale, cdc.OutcomeApplied, cdc.OutcomeApplied}
	res := s.ApplyBatch(ctx, changes)
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("change %d (%s %s): outcome %v (%v), want %v", i, changes[i].Key, changes[i].Version, r.Outcome, r.Err, want[i])
		}
		if (r.Err != nil) != (want[i] == cdc.OutcomeFailed) {
			t.Errorf("change %d: error %v", i, r.Err)
		}
	}
	if err := res[2].Err; err == nil || errors.Is(err, cdc.ErrInvalid) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("change to a string key: %v, want a transient WRONGTYPE error", err)
	}
	checkRecord(t, c, "a", "db.rep:a", map[string]string{"v": string(ver(1, 21)), "d": string(rowJSON(8, 8))}, testTableTTL)
	checkRecord(t, c, "b", "db.rep:b", map[string]string{"v": string(ver(1, 1)), "t": "1"}, testTombTTL)
	checkRecord(t, c, "r", "db.ref:r", nil, 0)
	checkRecord(t, c, "x", "db.rep0:x", nil, 0)
	checkRecord(t, c, "y", "db.rep0:y", map[string]string{"v": string(ver(6, 0)), "d": string(rowJSON(7, 7))}, 0)
	if got, err := c.Get(ctx, "db.rep:str").Result(); err != nil || got != "not a hash" {
		t.Errorf("string key: %q %v", got, err)
	}
	// Nine changes at MaxBatch 4: three script calls, one pipeline.
	stats, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stats, "cmdstat_evalsha:calls=3,") {
		t.Errorf("want 3 EVALSHA calls for 9 changes at MaxBatch 4; commandstats:\n%s", stats)
	}
}
