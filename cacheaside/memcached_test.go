package cacheaside_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// A deleted row is never brought back by a fill: its tombstone answers
// "not found" without the database, and a delete applied between a lease
// holder's database read and its fill makes the fill lose.
func TestTombstoneNeverFilledBack(t *testing.T) {
	eachCache(t, "    fill: lease\n    negative_ttl: 1m\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		e.insert(1, "still in db", 1) // the delete has not reached this read of MySQL
		e.apply(cdc.OpDelete, 1, "", cdc.NewVersion(3, 10, 0))
		r := e.reader(cacheaside.Options{})
		if _, err := r.Get(ctx, e.table, 1); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Fatalf("tombstone: %v, want ErrNotFound", err)
		}
		if q := e.queries.Load(); q != 0 {
			t.Fatalf("a tombstone asked the database (%d queries)", q)
		}

		e.insert(2, "two", 2)
		var once sync.Once
		r = e.reader(cacheaside.Options{AfterDBRead: func(string, string) {
			once.Do(func() {
				e.exec("DELETE FROM `test`.`"+e.name+"` WHERE id = ?", 2)
				e.apply(cdc.OpDelete, 2, "", cdc.NewVersion(3, 20, 0))
			})
		}})
		if got, err := r.Get(ctx, e.table, 2); err != nil || string(got) != `{"id":2,"name":"two","n":2}` {
			t.Fatalf("get: %s, %v; want the row read before the delete", got, err)
		}
		if s := r.Stats(); s.FillConflicts != 1 || s.Fills != 0 {
			t.Errorf("stats %+v, want the fill to lose", s)
		}
		if rec := e.record(2); rec["t"] != "1" || rec["d"] != "" || rec["v"] != string(cdc.NewVersion(3, 20, 0)) {
			t.Errorf("record %v: the fill resurrected the deleted row", rec)
		}
		if _, err := r.Get(ctx, e.table, 2); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Errorf("after the delete: %v, want ErrNotFound", err)
		}
	})
}

// With memcached killed, reads go to the database, at most
// MaxDBConcurrency at a time, without a fill and without an error; once it
// is back (empty, as memcached keeps nothing) and the backoff has passed,
// the same Reader reads it again.
func TestMemcachedDownBoundedAndRecovers(t *testing.T) {
	e := newCacheEnv(t, "memcached", "    fill: lease\n")
	ctx := context.Background()
	const n, limit = 8, 2
	for i := 1; i <= n; i++ {
		e.insert(i, "db", i)
	}
	r := e.reader(cacheaside.Options{MaxDBConcurrency: limit, RedisBackoff: 200 * time.Millisecond})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"db","n":1}` {
		t.Fatalf("with memcached up: %s, %v", got, err)
	}
	if s := r.Stats(); s.Fills != 1 {
		t.Fatalf("stats %+v, want a fill", s)
	}

	e.mcsrv.Kill()
	release := e.gate.hold()
	var wg sync.WaitGroup
	errs := make([]error, n)
	rows := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := r.Get(ctx, e.table, i+1)
			rows[i], errs[i] = string(got), err
		}()
	}
	waitFor(t, "the queries to be held or queued", func() bool {
		return e.gate.inFlight.Load() > limit || e.gate.inFlight.Load() == limit && r.Stats().DBSlotWaits == n-limit
	})
	if got := e.gate.inFlight.Load(); got != limit {
		t.Fatalf("%d queries in flight at once with memcached down, want at most %d", got, limit)
	}
	release()
	wg.Wait()
	for i := range rows {
		if errs[i] != nil || !strings.HasPrefix(rows[i], `{"id":`) {
			t.Fatalf("read %d with memcached down: %s, %v", i+1, rows[i], errs[i])
		}
	}
	many, err := r.GetMany(ctx, e.table, [][]any{{1}, {99}})
	if err != nil || string(many[0]) != `{"id":1,"name":"db","n":1}` || many[1] != nil {
		t.Fatalf("batch with memcached down: %s, %v", many, err)
	}
	s := r.Stats()
	if s.RedisDown < 1 || s.DBFallbacks < 1 || s.Errors != 0 || s.Fills != 1 || s.Hits != 0 || e.gate.peak.Load() != limit {
		t.Errorf("stats %+v, peak %d: want memcached down counted, reads from the database, no errors, no fills", s, e.gate.peak.Load())
	}

	// Back, empty: the change stream writes the row again, and the Reader
	// answers from memcached once its backoff has passed.
	e.mcsrv.Restart()
	e.apply(cdc.OpUpdate, 1, `{"id":1,"name":"cached","n":1}`, cdc.NewVersion(2, 1, 0))
	waitFor(t, "the reader to use memcached again", func() bool {
		got, err := r.Get(ctx, e.table, 1)
		return err == nil && string(got) == `{"id":1,"name":"cached","n":1}`
	})
	if got, err := r.Get(ctx, e.table, 5); err != nil || string(got) != `{"id":5,"name":"db","n":5}` {
		t.Fatalf("miss after recovery: %s, %v", got, err)
	}
	if rec := e.record(5); rec["d"] != `{"id":5,"name":"db","n":5}` {
		t.Errorf("no fill after recovery: %v", rec)
	}
}

// A server error about one key (here the row is larger than memcached's
// item size limit, so its fill is answered SERVER_ERROR) is that key's
// problem: the caller gets the row, memcached is not considered down, and
// other keys are still read from it.
func TestMemcachedServerErrorIsThatKeysProblem(t *testing.T) {
	e := newCacheEnv(t, "memcached", "    fill: lease\n")
	ctx := context.Background()
	name := e.name + "_big"
	table := "test." + name
	e.exec("CREATE TABLE `test`.`" + name + "` (id INT PRIMARY KEY, body MEDIUMTEXT)")
	t.Cleanup(func() { e.exec("DROP TABLE `test`.`" + name + "`") })
	big := strings.Repeat("x", 1<<20+1000) // above memcached's default 1 MB item limit
	e.exec("INSERT INTO `test`.`"+name+"` VALUES (1, ?), (2, 'small')", big)
	cfg, err := cdc.ParseConfig([]byte("prefix: \"" + e.prefix + "\"\ntables:\n  " + table + ":\n    fill: lease\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := e.readerFor(cfg, cacheaside.Options{RedisBackoff: time.Hour})
	got, err := r.Get(ctx, table, 1)
	if err != nil || !strings.Contains(string(got), big) {
		t.Fatalf("big row: %.60s, %v", got, err)
	}
	s := r.Stats()
	if s.RedisDown != 0 || s.KeyErrors != 1 || s.Fills != 0 {
		t.Fatalf("stats %+v: want one key error, memcached not down", s)
	}
	for i := 0; i < 2; i++ { // a miss that fills, then a hit: memcached is still asked
		if got, err := r.Get(ctx, table, 2); err != nil || string(got) != `{"id":2,"body":"small"}` {
			t.Fatalf("small row: %s, %v", got, err)
		}
	}
	if s := r.Stats(); s.Fills != 1 || s.Hits != 1 || s.RedisDown != 0 {
		t.Errorf("stats %+v: want the small row filled then hit", s)
	}
}

// A table's truncate watermark hides its older records from the reader as
// from the change stream; a fill carries a version above the watermark, or
// is not made while the checkpoint has not passed it (it would read as
// truncated).
func TestMemcachedTruncateWatermark(t *testing.T) {
	e := newCacheEnv(t, "memcached", "    fill: lease\n")
	ctx := context.Background()
	v1, vt, v3 := cdc.NewVersion(6, 10, 0), cdc.NewVersion(6, 20, 0), cdc.NewVersion(6, 30, 0)
	e.apply(cdc.OpCreate, 1, `{"id":1,"name":"before truncate","n":1}`, v1)
	if out, err := e.store.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: e.table, Version: vt, Server: "srv"}); err != nil || out != cdc.OutcomeApplied {
		t.Fatalf("truncate: %v %v", out, err)
	}
	e.insert(1, "after", 1)
	e.setCheckpoint(vt)
	r := e.reader(cacheaside.Options{})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"after","n":1}` {
		t.Fatalf("truncated record: %s, %v; want the database's row", got, err)
	}
	if s := r.Stats(); s.Hits != 0 || s.Fills != 0 || s.DBQueries != 1 {
		t.Errorf("stats %+v: want a miss and no fill at the watermark", s)
	}
	if rec := e.record(1); rec["v"] != string(v1) {
		t.Errorf("record %v: a fill at the watermark was written", rec)
	}

	e.setCheckpoint(v3)
	for i := 0; i < 2; i++ {
		if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"after","n":1}` {
			t.Fatalf("get %d: %s, %v", i, got, err)
		}
	}
	if rec := e.record(1); rec["d"] != `{"id":1,"name":"after","n":1}` || rec["v"] != string(v3) {
		t.Errorf("record %v: want the fill at the checkpoint", rec)
	}
	if s := r.Stats(); s.Fills != 1 || s.Hits != 1 {
		t.Errorf("stats %+v", s)
	}
}
