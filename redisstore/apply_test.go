package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

const (
	testTableTTL = time.Hour
	testTombTTL  = 2 * time.Hour
	seedTTL      = 3 * time.Hour // on seeded records, to see whether a change replaced the TTL
)

func testConfig(prefix string) *cdc.Config {
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	cfg.TombstoneTTL = testTombTTL
	cfg.Tables = map[string]*cdc.Table{
		"db.rep":  {Mode: cdc.ModeReplicate, TTL: testTableTTL},
		"db.rep0": {Mode: cdc.ModeReplicate},
		"db.ref":  {Mode: cdc.ModeRefresh, TTL: testTableTTL},
		"db.inv":  {Mode: cdc.ModeInvalidate, TTL: testTableTTL},
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

// seedState is a stored record before a change.
type seedState struct {
	name   string
	fields map[string]string // nil: absent
}

// wantAfter is the apply rules of design section 2, written out
// independently of the Lua script: the outcome and record a change leaves.
func wantAfter(mode cdc.Mode, tableTTL time.Duration, seed map[string]string, op cdc.Op, v cdc.Version, row string, untyped bool) (cdc.Outcome, map[string]string, time.Duration) {
	sv, hasV := seed["v"]
	if mode == cdc.ModeRefresh && seed == nil {
		return cdc.OutcomeIgnored, nil, 0
	}
	if hasV && cdc.Version(sv) >= v {
		return cdc.OutcomeStale, seed, seedTTL
	}
	switch {
	case op == cdc.OpDelete:
		return cdc.OutcomeDeleted, map[string]string{"v": string(v), "t": "1"}, testTombTTL
	case untyped: // a row without canonical types: a marker, counted apart
		return cdc.OutcomeUntyped, map[string]string{"v": string(v)}, testTombTTL
	case mode == cdc.ModeInvalidate:
		return cdc.OutcomeApplied, map[string]string{"v": string(v)}, testTombTTL
	}
	return cdc.OutcomeApplied, map[string]string{"v": string(v), "d": row}, tableTTL
}

func TestApplyRules(t *testing.T) {
	c, prefix := testredis.Shared(t)
	cfg := testConfig(prefix)
	s := newTestStore(t, c, cfg, Options{})
	ctx := context.Background()

	stored := ver(7, 1000)
	seeds := []seedState{
		{"absent", nil},
		{"row", map[string]string{"v": string(stored), "d": `{"id":1,"old":true}`}},
		{"tombstone", map[string]string{"v": string(stored), "t": "1"}},
		{"marker", map[string]string{"v": string(stored)}},
		{"lease", map[string]string{"l": "tok-1"}},
		{"lease+v", map[string]string{"l": "tok-2", "v": string(stored)}},
		{"no-v-row", map[string]string{"d": `{"id":1}`}},
	}
	versions := map[string]cdc.Version{
		"older":        ver(7, 999),
		"equal":        stored,
		"newer":        ver(7, 1001),
		"older-file":   ver(6, 99999999),
		"newer-file":   ver(8, 0),
		"next-row-idx": cdc.NewVersion(7, 1000, 1),
	}
	tables := []string{"db.rep", "db.rep0", "db.ref", "db.inv"}
	ops := []cdc.Op{cdc.OpCreate, cdc.OpUpdate, cdc.OpRead, cdc.OpDelete}
	n := 0
	for _, table := range tables {
		tc, _ := cfg.Lookup(table)
		for _, seed := range seeds {
			for _, op := range ops {
				for vname, v := range versions {
					n++
					untyped := op != cdc.OpDelete && n%3 == 0 // every table, seed and op meets both
					key := fmt.Sprintf("%s%s:%d", prefix, table, n)
					name := fmt.Sprintf("%s/%s/%s/%s/untyped=%v", table, seed.name, op, vname, untyped)
					if seed.fields != nil {
						if err := c.HSet(ctx, key, seed.fields).Err(); err != nil {
							t.Fatal(err)
						}
						c.PExpire(ctx, key, seedTTL)
					}
					ch := cdc.Change{Op: op, Table: table, Key: key, Version: v, Untyped: untyped}
					row := fmt.Sprintf(`{"id":%d}`, n)
					if op != cdc.OpDelete && !untyped {
						ch.Row = []byte(row)
					}
					wantOut, wantRec, wantTTL := wantAfter(tc.Mode, tc.TTL, seed.fields, op, v, row, untyped)
					out, err := s.Apply(ctx, ch)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if out != wantOut {
						t.Errorf("%s: outcome %v, want %v", name, out, wantOut)
					}
					checkRecord(t, c, name, key, wantRec, wantTTL)
				}
			}
		}
	}
}

// checkRecord compares a record and its TTL (0: none) with what is expected.
func checkRecord(t *testing.T, c *redis.Client, name, key string, want map[string]string, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	got, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want == nil {
		want = map[string]string{}
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: record %v, want %v", name, got, want)
	}
	if len(want) == 0 {
		return
	}
	pttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case ttl == 0 && pttl != -1:
		t.Errorf("%s: PTTL %v, want none", name, pttl)
	case ttl > 0 && (pttl > ttl || pttl < ttl-time.Minute):
		t.Errorf("%s: PTTL %v, want about %v", name, pttl, ttl)
	}
}

func TestApplySequences(t *testing.T) {
	c, prefix := testredis.Shared(t)
	s := newTestStore(t, c, testConfig(prefix), Options{})
	ctx := context.Background()
	apply := func(ch cdc.Change, want cdc.Outcome) {
		t.Helper()
		out, err := s.Apply(ctx, ch)
		if err != nil || out != want {
			t.Fatalf("%s %s at %s: got %v %v, want %v", ch.Op, ch.Key, ch.Version, out, err, want)
		}
	}

	// A delete then a replayed older upsert: the row stays deleted.
	key := prefix + "db.rep:1"
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: ver(1, 10), Row: rowJSON(1, 1)}, cdc.OutcomeApplied)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: ver(1, 20)}, cdc.OutcomeDeleted)
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: ver(1, 15), Row: rowJSON(1, 2)}, cdc.OutcomeStale)
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: ver(1, 10), Row: rowJSON(1, 1)}, cdc.OutcomeStale)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: ver(1, 20)}, cdc.OutcomeStale)
	checkRecord(t, c, "delete then older upsert", key, map[string]string{"v": string(ver(1, 20)), "t": "1"}, testTombTTL)
	// A re-insert after the delete brings it back.
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: ver(1, 30), Row: rowJSON(1, 3)}, cdc.OutcomeApplied)
	checkRecord(t, c, "re-insert", key, map[string]string{"v": string(ver(1, 30)), "d": string(rowJSON(1, 3))}, testTableTTL)

	// Refresh mode: nothing is created for an absent key, a lease makes the
	// change apply, and the lease is cleared.
	rkey := prefix + "db.ref:1"
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.ref", Key: rkey, Version: ver(1, 10), Row: rowJSON(1, 1)}, cdc.OutcomeIgnored)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.ref", Key: rkey, Version: ver(1, 11)}, cdc.OutcomeIgnored)
	checkRecord(t, c, "refresh absent", rkey, nil, 0)
	c.HSet(ctx, rkey, "l", "token")
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.ref", Key: rkey, Version: ver(1, 12), Row: rowJSON(1, 2)}, cdc.OutcomeApplied)
	checkRecord(t, c, "refresh over lease", rkey, map[string]string{"v": string(ver(1, 12)), "d": string(rowJSON(1, 2))}, testTableTTL)

	// Ignored and unlisted changes do not touch Redis.
	ikey := prefix + "db.rep:ignored"
	apply(cdc.Change{Op: cdc.OpIgnore, Table: "db.rep", Key: ikey, Version: ver(1, 1), Reason: "heartbeat"}, cdc.OutcomeIgnored)
	checkRecord(t, c, "ignored", ikey, nil, 0)
}

func TestApplyOnlyListed(t *testing.T) {
	c, prefix := testredis.Shared(t)
	cfg := testConfig(prefix)
	cfg.OnlyListed = true
	s := newTestStore(t, c, cfg, Options{})
	key := prefix + "db.other:1"
	out, err := s.Apply(context.Background(), cdc.Change{Op: cdc.OpCreate, Table: "db.other", Key: key, Version: ver(1, 1), Row: rowJSON(1, 1)})
	if err != nil || out != cdc.OutcomeIgnored {
		t.Fatalf("unlisted table: %v %v, want ignored", out, err)
	}
	checkRecord(t, c, "unlisted", key, nil, 0)
}

func TestApplyInvalid(t *testing.T) {
	c, prefix := testredis.Shared(t)
	s := newTestStore(t, c, testConfig(prefix), Options{})
	key := prefix + "db.rep:1"
	for name, ch := range map[string]cdc.Change{
		"no key":      {Op: cdc.OpCreate, Table: "db.rep", Version: ver(1, 1), Row: rowJSON(1, 1)},
		"no row":      {Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: ver(1, 1)},
		"no version":  {Op: cdc.OpDelete, Table: "db.rep", Key: key},
		"bad version": {Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: "00000000010000000000000000000000000000x1"},
		"unknown op":  {Op: 'z', Table: "db.rep", Key: key, Version: ver(1, 1)},
	} {
		out, err := s.Apply(context.Background(), ch)
		if !errors.Is(err, cdc.ErrInvalid) || out != cdc.OutcomeFailed {
			t.Errorf("%s: %v %v, want cdc.ErrInvalid", name, out, err)
		}
	}
	checkRecord(t, c, "invalid", key, nil, 0)
	res := s.ApplyBatch(context.Background(), []cdc.Change{
		{Op: cdc.OpCreate, Table: "db.rep", Version: ver(1, 1), Row: rowJSON(1, 1)},
		{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: ver(1, 1), Row: rowJSON(1, 1)},
	})
	if !errors.Is(res[0].Err, cdc.ErrInvalid) || res[1].Err != nil || res[1].Outcome != cdc.OutcomeApplied {
		t.Fatalf("batch with one invalid change: %+v", res)
	}
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
