package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

func TestTruncateRacingWrites(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	s := New(c, testConfig(prefix), Options{TruncateBatch: 50})
	const table, rows = "db.rep", 2000
	truncV := ver(5, 0)

	// Old rows (below the truncate), a bare lease and a lease with a newer
	// version; plus rows of tables whose names share the prefix or match it
	// as a glob, which must survive.
	pipe := c.Pipeline()
	for i := 0; i < rows; i++ {
		pipe.HSet(ctx, fmt.Sprintf("%s%s:%d", prefix, table, i), "v", string(ver(4, uint64(i+1))), "d", string(rowJSON(i, 0)))
	}
	pipe.HSet(ctx, prefix+table+":lease", "l", "tok")
	pipe.HSet(ctx, prefix+table+":lease-newer", "l", "tok", "v", string(ver(6, 0)))
	pipe.HSet(ctx, prefix+"db.rep2:1", "v", string(ver(1, 1)), "d", "{}")
	pipe.HSet(ctx, prefix+"db.rex:1", "v", string(ver(1, 1)), "d", "{}")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// Writers apply newer changes to every third row (and to new rows)
	// while the truncate runs.
	start := make(chan struct{})
	var wg sync.WaitGroup
	const writers = 4
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := w * 3; i < rows+300; i += 3 * writers {
				ch := cdc.Change{Op: cdc.OpUpdate, Table: table, Key: fmt.Sprintf("%s%s:%d", prefix, table, i),
					Version: ver(5, uint64(1+i)), Row: rowJSON(i, 1), Server: "srv"}
				if _, err := s.Apply(ctx, ch); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	close(start)
	out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: table, Version: truncV, Server: "srv"})
	if err != nil || out != cdc.OutcomeApplied {
		t.Fatalf("truncate: %v %v", out, err)
	}
	// A glob-looking table name must match only itself.
	if _, err := s.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: "db.re?", Version: truncV}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.Close(cctx); err != nil { // waits for the truncates
		t.Fatal(err)
	}

	for i := 0; i < rows+300; i++ {
		key := fmt.Sprintf("%s%s:%d", prefix, table, i)
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if got["v"] != string(ver(5, uint64(1+i))) || got["d"] != string(rowJSON(i, 1)) {
				t.Fatalf("%s written after the truncate began: %v", key, got)
			}
		} else if len(got) != 0 {
			t.Fatalf("%s older than the truncate survived: %v", key, got)
		}
	}
	for key, want := range map[string]int64{
		prefix + table + ":lease":       0,
		prefix + table + ":lease-newer": 1,
		prefix + "db.rep2:1":            1,
		prefix + "db.rex:1":             1,
	} {
		if n := c.Exists(ctx, key).Val(); n != want {
			t.Errorf("%s: exists %d, want %d", key, n, want)
		}
	}
	if st := s.Stats(); st.TruncateErrors != 0 {
		t.Errorf("truncate errors: %d", st.TruncateErrors)
	}
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"db.t:":       "db.t:",
		`a*b?c[d]e\f`: `a\*b\?c\[d\]e\\f`,
	} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTruncateWatermark: once a truncate at V is applied, no change at or
// below V writes, even where the scan already removed the record or none
// ever existed (a redelivery must not bring back a truncated row), while
// newer changes and other tables are unaffected.
func TestTruncateWatermark(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	s := newTestStore(t, c, testConfig(prefix), Options{})
	truncV := ver(5, 0)
	apply := func(ch cdc.Change) cdc.Outcome {
		t.Helper()
		out, err := s.Apply(ctx, ch)
		if err != nil {
			t.Fatalf("%s %s at %s: %v", ch.Op, ch.Key, ch.Version, err)
		}
		return out
	}
	watermark := func(table string) string { return c.HGet(ctx, TruncatedKey(prefix), table).Val() }

	for _, table := range []string{"db.rep", "db.ref", "db.inv"} {
		removed, never, newer := prefix+table+":1", prefix+table+":2", prefix+table+":3"
		// Seeded directly: a refresh table's change creates nothing.
		if err := c.HSet(ctx, removed, "v", string(ver(4, 1)), "d", string(rowJSON(1, 0))).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, newer, "v", string(ver(6, 0)), "d", string(rowJSON(3, 0))).Err(); err != nil {
			t.Fatal(err)
		}
		if out := apply(cdc.Change{Op: cdc.OpTruncate, Table: table, Version: truncV}); out != cdc.OutcomeApplied {
			t.Fatalf("%s truncate: %v", table, out)
		}
		// Durable when Apply returns, before the scan has finished.
		if w := watermark(table); w != string(truncV) {
			t.Fatalf("%s watermark after truncate = %q, want %s", table, w, truncV)
		}
		waitFor(t, "the truncate's scan to remove "+removed, func() bool { return c.Exists(ctx, removed).Val() == 0 })

		for _, key := range []string{removed, never} {
			for _, ch := range []cdc.Change{
				{Op: cdc.OpUpdate, Table: table, Key: key, Version: ver(4, 2), Row: rowJSON(1, 1)},
				{Op: cdc.OpRead, Table: table, Key: key, Version: ver(4, 3), Row: rowJSON(1, 2)},
				{Op: cdc.OpDelete, Table: table, Key: key, Version: ver(4, 4)},
				{Op: cdc.OpUpdate, Table: table, Key: key, Version: truncV, Row: rowJSON(1, 3)},
			} {
				if out := apply(ch); out != cdc.OutcomeStale {
					t.Errorf("%s %s at %s below the truncate: %v, want stale", ch.Op, key, ch.Version, out)
				}
				if got := c.HGetAll(ctx, key).Val(); len(got) != 0 {
					t.Fatalf("%s %s at %s below the truncate wrote %v", ch.Op, key, ch.Version, got)
				}
			}
		}
		if got := c.HGetAll(ctx, newer).Val(); got["v"] != string(ver(6, 0)) {
			t.Errorf("%s: a record newer than the truncate did not survive: %v", newer, got)
		}
	}

	// Changes above the truncate apply as usual.
	if out := apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:1", Version: ver(5, 1), Row: rowJSON(1, 9)}); out != cdc.OutcomeApplied {
		t.Errorf("upsert above the truncate: %v", out)
	}
	if got := c.HGet(ctx, prefix+"db.rep:1", "d").Val(); got != string(rowJSON(1, 9)) {
		t.Errorf("upsert above the truncate left d = %q", got)
	}
	if out := apply(cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: prefix + "db.rep:2", Version: ver(5, 2)}); out != cdc.OutcomeDeleted {
		t.Errorf("delete above the truncate: %v", out)
	}
	if got := c.HGet(ctx, prefix+"db.rep:2", "t").Val(); got != "1" {
		t.Errorf("delete above the truncate left t = %q", got)
	}
	// Another table's watermark is its own.
	if out := apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.rep0", Key: prefix + "db.rep0:1", Version: ver(1, 1), Row: rowJSON(1, 0)}); out != cdc.OutcomeApplied {
		t.Errorf("old change to a table never truncated: %v", out)
	}

	// An older truncate redelivered after a newer one is stale and leaves
	// the watermark where it was; a newer one raises it.
	if out := apply(cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(3, 0)}); out != cdc.OutcomeStale {
		t.Errorf("older truncate: %v, want stale", out)
	}
	if w := watermark("db.rep"); w != string(truncV) {
		t.Errorf("watermark moved back to %q", w)
	}
	if out := apply(cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: truncV}); out != cdc.OutcomeApplied {
		t.Errorf("duplicate truncate: %v, want applied (its scan runs again)", out)
	}
	// In one batch, the truncate is decided before any change in it: the
	// older change is stale wherever it sits, the newer one applies.
	res := s.ApplyBatch(ctx, []cdc.Change{
		{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:7", Version: ver(6, 1), Row: rowJSON(7, 0)},
		{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(7, 0)},
		{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:8", Version: ver(7, 1), Row: rowJSON(8, 0)},
	})
	for i, want := range []cdc.Outcome{cdc.OutcomeStale, cdc.OutcomeApplied, cdc.OutcomeApplied} {
		if res[i].Err != nil || res[i].Outcome != want {
			t.Errorf("batch[%d]: %v %v, want %v", i, res[i].Outcome, res[i].Err, want)
		}
	}
	if w := watermark("db.rep"); w != string(ver(7, 0)) {
		t.Errorf("watermark after a newer truncate = %q, want %s", w, ver(7, 0))
	}
	if n := c.Exists(ctx, prefix+"db.rep:7").Val(); n != 0 {
		t.Errorf("a change older than the batch's truncate was written")
	}
}

// TestTruncateWatermarkFails: a truncate whose watermark cannot be written
// fails (Pub/Sub retries it) and starts no scan.
func TestTruncateWatermarkFails(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	s := newTestStore(t, c, testConfig(prefix), Options{})
	key := prefix + "db.rep:1"
	if err := c.HSet(ctx, key, "v", string(ver(1, 1)), "d", "{}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, TruncatedKey(prefix), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(5, 0)})
	if err == nil || out != cdc.OutcomeFailed {
		t.Fatalf("truncate with an unwritable watermark: %v %v, want failed", out, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Close(cctx); err != nil { // waits for any truncate started
		t.Fatal(err)
	}
	if n := c.Exists(ctx, key).Val(); n != 1 {
		t.Errorf("a failed truncate removed rows")
	}
}
