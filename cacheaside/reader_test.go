package cacheaside_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

func TestHitTombstoneAndMissWithoutFill(t *testing.T) {
	eachCache(t, "    fill: none\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		e.insert(1, "db-one", 1)
		e.insert(3, "db-three", 3)
		// Redis says something else than the database for 1, so a hit is
		// recognisable as one.
		e.apply(cdc.OpCreate, 1, `{"id":1,"name":"cached","n":1}`, cdc.NewVersion(1, 1, 0))
		e.apply(cdc.OpDelete, 2, "", cdc.NewVersion(1, 2, 0))
		r := e.reader(cacheaside.Options{})

		got, err := r.Get(ctx, e.table, 1)
		if err != nil || string(got) != `{"id":1,"name":"cached","n":1}` {
			t.Fatalf("hit: %s, %v", got, err)
		}
		if _, err := r.Get(ctx, e.table, 2); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Fatalf("tombstone: err %v, want ErrNotFound", err)
		}
		if q := e.queries.Load(); q != 0 {
			t.Fatalf("a hit or a tombstone asked the database (%d queries)", q)
		}
		got, err = r.Get(ctx, e.table, 3)
		if err != nil || string(got) != `{"id":3,"name":"db-three","n":3}` {
			t.Fatalf("miss: %s, %v", got, err)
		}
		if rec := e.record(3); len(rec) != 0 {
			t.Errorf("fill none wrote %v", rec)
		}
		if _, err := r.Get(ctx, e.table, 4); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Fatalf("absent row: err %v, want ErrNotFound", err)
		}
		if rec := e.record(4); len(rec) != 0 {
			t.Errorf("fill none cached a negative: %v", rec)
		}
		s := r.Stats()
		if s.Hits != 1 || s.TombstoneHits != 1 || s.Misses != 2 || s.DBQueries != 2 || s.Fills != 0 || s.Errors != 0 {
			t.Errorf("stats %+v", s)
		}
		if e.queries.Load() != 2 || s.HitLatency.Count != 2 || s.MissLatency.Count != 2 {
			t.Errorf("database saw %d queries; latencies %d hit %d miss", e.queries.Load(), s.HitLatency.Count, s.MissLatency.Count)
		}
		if _, err := r.Get(ctx, e.table, 1.5); err == nil || !strings.Contains(err.Error(), "not a supported key type") {
			t.Errorf("bad key type: err %v", err)
		}
	})
}

func TestFillWithLease(t *testing.T) {
	eachCache(t, "    fill: lease\n    ttl: 1h\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		e.insert(1, "one", 1)
		cp := cdc.NewVersion(4, 1000, 0)
		e.setCheckpoint(cp)
		r := e.reader(cacheaside.Options{})
		for i := 0; i < 2; i++ {
			got, err := r.Get(ctx, e.table, 1)
			if err != nil || string(got) != `{"id":1,"name":"one","n":1}` {
				t.Fatalf("get %d: %s, %v", i, got, err)
			}
		}
		if rec := e.record(1); rec["d"] != `{"id":1,"name":"one","n":1}` || rec["v"] != string(cp) || rec["l"] != "" {
			t.Errorf("filled record %v, want {d, v=checkpoint}", rec)
		}
		if ttl := e.ttl(1); ttl <= 0 || ttl > time.Hour {
			t.Errorf("filled row PTTL %v, want the table ttl", ttl)
		}
		s := r.Stats()
		if s.Misses != 1 || s.Hits != 1 || s.Fills != 1 || s.DBQueries != 1 || e.queries.Load() != 1 {
			t.Errorf("stats %+v, database queries %d", s, e.queries.Load())
		}
		// A change from the stream after the fill applies (its version is
		// above the checkpoint); a redelivery from before the checkpoint not.
		if out := e.apply(cdc.OpUpdate, 1, `{"id":1,"name":"old","n":0}`, cdc.NewVersion(4, 999, 0)); out != cdc.OutcomeStale {
			t.Errorf("change below the checkpoint: %v", out)
		}
		e.apply(cdc.OpUpdate, 1, `{"id":1,"name":"newer","n":2}`, cdc.NewVersion(4, 1001, 0))
		if got, _ := r.Get(ctx, e.table, 1); string(got) != `{"id":1,"name":"newer","n":2}` {
			t.Errorf("after the change: %s", got)
		}
	})
}

// TestFillLosesToChangeAppliedMeanwhile: the holder read the database, then
// a change committed and was applied before the fill. The fill must fail;
// Get answers the row it read (current when read), the cache keeps the
// change.
func TestFillLosesToChangeAppliedMeanwhile(t *testing.T) {
	eachCache(t, "    fill: lease\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		e.insert(1, "before", 1)
		var once sync.Once
		r := e.reader(cacheaside.Options{AfterDBRead: func(table, key string) {
			once.Do(func() {
				e.exec("UPDATE `test`.`"+e.name+"` SET name = 'after', n = 2 WHERE id = ?", 1)
				e.apply(cdc.OpUpdate, 1, `{"id":1,"name":"after","n":2}`, cdc.NewVersion(7, 1, 0))
			})
		}})
		got, err := r.Get(ctx, e.table, 1)
		if err != nil || string(got) != `{"id":1,"name":"before","n":1}` {
			t.Fatalf("get: %s, %v; want the row read from the database", got, err)
		}
		if s := r.Stats(); s.FillConflicts != 1 || s.Fills != 0 {
			t.Errorf("stats %+v, want one fill conflict", s)
		}
		if rec := e.record(1); rec["d"] != `{"id":1,"name":"after","n":2}` || rec["v"] != string(cdc.NewVersion(7, 1, 0)) {
			t.Errorf("record %v: the older fill overwrote the change", rec)
		}
		if got, _ := r.Get(ctx, e.table, 1); string(got) != `{"id":1,"name":"after","n":2}` {
			t.Errorf("next get: %s", got)
		}
	})
}

func TestConcurrentMissesShareOneQuery(t *testing.T) {
	eachCache(t, "    fill: lease\n", func(t *testing.T, e *env) {
		e.insert(5, "five", 5)
		// The first reader holds the database read open until every other
		// reader is waiting on the same miss.
		release := make(chan struct{})
		var once sync.Once
		r := e.reader(cacheaside.Options{AfterDBRead: func(string, string) { once.Do(func() { <-release }) }})
		const n = 50
		var wg sync.WaitGroup
		results := make([]json.RawMessage, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = r.Get(context.Background(), e.table, 5)
			}()
		}
		waitFor(t, "all readers to miss", func() bool { return r.Stats().Misses == n })
		close(release)
		wg.Wait()
		for i := range results {
			if errs[i] != nil || string(results[i]) != `{"id":5,"name":"five","n":5}` {
				t.Fatalf("reader %d: %s, %v", i, results[i], errs[i])
			}
		}
		// Each caller owns its slice, though they shared one query.
		results[0][0] = 'X'
		for i := 1; i < n; i++ {
			if results[i][0] != '{' {
				t.Fatalf("reader %d saw reader 0's write to its result", i)
			}
		}
		if s := r.Stats(); s.DBQueries != 1 || s.Fills != 1 {
			t.Errorf("stats %+v, want one query and one fill", s)
		}
		if q := e.queries.Load(); q != 1 {
			t.Errorf("the database saw %d queries for %d concurrent misses", q, n)
		}
	})
}

// A cold cache with Redis up turns every read into a query: they wait for
// one of MaxDBConcurrency slots instead of each taking a connection.
func TestColdCacheQueriesAreBoundedWithRedisUp(t *testing.T) {
	eachCache(t, "", func(t *testing.T, e *env) {
		const n, limit = 10, 2
		for i := 0; i < n; i++ {
			e.insert(i, "row", i)
		}
		release := e.gate.hold()
		r := e.reader(cacheaside.Options{MaxDBConcurrency: limit})
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.Get(context.Background(), e.table, i)
			}()
		}
		waitFor(t, "the queries to be held or queued", func() bool {
			return e.gate.inFlight.Load() > limit || e.gate.inFlight.Load() == limit && r.Stats().DBSlotWaits == n-limit
		})
		if got := e.gate.inFlight.Load(); got != limit {
			t.Fatalf("%d queries in flight at once, want at most %d", got, limit)
		}
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
		}
		if p := e.gate.peak.Load(); p != limit {
			t.Errorf("peak %d queries in flight, want %d", p, limit)
		}
		if s := r.Stats(); s.DBQueries != n || s.DBFallbacks != 0 {
			t.Errorf("stats %+v: want %d queries, none as Redis-down fallbacks", s, n)
		}
	})
}

func TestWaitForAnotherReadersLease(t *testing.T) {
	eachCache(t, "    fill: lease\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		e.insert(1, "one", 1)
		e.insert(2, "two", 2)

		// Another process holds the lease of 1 and fills while this reader waits.
		_, fill := e.otherLease(1)
		r := e.reader(cacheaside.Options{LeaseWait: 10 * time.Second})
		done := make(chan string)
		go func() {
			got, _ := r.Get(ctx, e.table, 1)
			done <- string(got)
		}()
		waitFor(t, "the reader to wait on the lease", func() bool { return r.Stats().LeaseWaits == 1 })
		fill(`{"id":1,"name":"filled","n":1}`)
		if got := <-done; got != `{"id":1,"name":"filled","n":1}` {
			t.Errorf("waiter got %s, want the other's fill", got)
		}
		if s := r.Stats(); s.LateHits != 1 || s.DBQueries != 0 {
			t.Errorf("stats %+v", s)
		}

		// A lease never filled: after LeaseWait the reader asks the database
		// and leaves the other's lease alone.
		token, _ := e.otherLease(2)
		r = e.reader(cacheaside.Options{LeaseWait: 20 * time.Millisecond})
		got, err := r.Get(ctx, e.table, 2)
		if err != nil || string(got) != `{"id":2,"name":"two","n":2}` {
			t.Fatalf("get: %s, %v", got, err)
		}
		if s := r.Stats(); s.LeaseWaitTimeouts != 1 || s.DBQueries != 1 || s.Fills != 0 {
			t.Errorf("stats %+v", s)
		}
		if rec := e.record(2); rec["l"] != token || rec["d"] != "" {
			t.Errorf("record %v: the waiter touched another's lease", rec)
		}
	})
}

func TestNegativeCache(t *testing.T) {
	eachCache(t, "    fill: lease\n    negative_ttl: 1m\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		cp := cdc.NewVersion(2, 50, 0)
		e.setCheckpoint(cp)
		r := e.reader(cacheaside.Options{})
		if _, err := r.Get(ctx, e.table, 9); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Fatalf("absent row: %v", err)
		}
		if rec := e.record(9); rec["t"] != "1" || rec["v"] != string(cp) {
			t.Fatalf("negative fill %v, want {t:1, v:checkpoint}", rec)
		}
		if ttl := e.ttl(9); ttl <= 0 || ttl > time.Minute {
			t.Errorf("negative tombstone PTTL %v", ttl)
		}
		// The tombstone answers without the database.
		if _, err := r.Get(ctx, e.table, 9); !errors.Is(err, cacheaside.ErrNotFound) {
			t.Fatalf("tombstone hit: %v", err)
		}
		if s := r.Stats(); s.DBQueries != 1 || e.queries.Load() != 1 || s.TombstoneHits != 1 {
			t.Errorf("stats %+v, database queries %d", s, e.queries.Load())
		}
		// The row is inserted later; its change has a higher version than the
		// checkpoint the tombstone carries and replaces it.
		e.insert(9, "nine", 9)
		if out := e.apply(cdc.OpCreate, 9, `{"id":9,"name":"nine","n":9}`, cdc.NewVersion(2, 51, 0)); out != cdc.OutcomeApplied {
			t.Fatalf("insert after the negative: %v", out)
		}
		if got, err := r.Get(ctx, e.table, 9); err != nil || string(got) != `{"id":9,"name":"nine","n":9}` {
			t.Fatalf("after insert: %s, %v", got, err)
		}
	})
}

func TestGetMany(t *testing.T) {
	eachCache(t, "    fill: lease\n    negative_ttl: 1m\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		for id := 1; id <= 4; id++ {
			e.insert(id, "db", id)
		}
		e.apply(cdc.OpCreate, 1, `{"id":1,"name":"cached","n":1}`, cdc.NewVersion(1, 1, 0))
		e.apply(cdc.OpDelete, 2, "", cdc.NewVersion(1, 2, 0))
		r := e.reader(cacheaside.Options{})
		got, err := r.GetMany(ctx, e.table, [][]any{{1}, {2}, {3}, {4}, {5}, {3}})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`{"id":1,"name":"cached","n":1}`, "", `{"id":3,"name":"db","n":3}`, `{"id":4,"name":"db","n":4}`, "", `{"id":3,"name":"db","n":3}`}
		for i := range want {
			if string(got[i]) != want[i] || (want[i] == "" && got[i] != nil) {
				t.Errorf("result[%d] = %s, want %q", i, got[i], want[i])
			}
		}
		if q := e.queries.Load(); q != 1 {
			t.Errorf("the batch took %d database queries, want 1", q)
		}
		if rec := e.record(4); rec["d"] != `{"id":4,"name":"db","n":4}` {
			t.Errorf("batch fill of 4: %v", rec)
		}
		if rec := e.record(5); rec["t"] != "1" {
			t.Errorf("batch negative fill of 5: %v", rec)
		}
		got, err = r.GetMany(ctx, e.table, [][]any{{3}, {4}, {5}})
		if err != nil || string(got[0]) != `{"id":3,"name":"db","n":3}` || string(got[1]) != `{"id":4,"name":"db","n":4}` || got[2] != nil {
			t.Fatalf("second batch: %s, %v", got, err)
		}
		if q := e.queries.Load(); q != 1 {
			t.Errorf("a batch answered by Redis asked the database (%d queries)", q)
		}
		if _, err := r.GetMany(ctx, e.table, [][]any{{1}, {true}}); err == nil {
			t.Error("a bad key in a batch gave no error")
		}
		if out, err := r.GetMany(ctx, e.table, nil); err != nil || len(out) != 0 {
			t.Errorf("empty batch: %v %v", out, err)
		}
	})
}

func TestRedisDownFallsBackToDatabase(t *testing.T) {
	e := newEnv(t, "    fill: lease\n")
	ctx := context.Background()
	e.insert(1, "one", 1)
	p := testredis.StartPrivate(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	r := cacheaside.New(rdb, e.db, e.cfg, cacheaside.Options{RedisBackoff: time.Hour})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"one","n":1}` {
		t.Fatalf("with Redis up: %s, %v", got, err)
	}
	if s := r.Stats(); s.Fills != 1 {
		t.Fatalf("stats %+v, want a fill on the private Redis", s)
	}
	p.Kill()
	for i := 0; i < 3; i++ {
		got, err := r.Get(ctx, e.table, 1)
		if err != nil || string(got) != `{"id":1,"name":"one","n":1}` {
			t.Fatalf("with Redis down: %s, %v", got, err)
		}
	}
	got, err := r.GetMany(ctx, e.table, [][]any{{1}, {2}})
	if err != nil || string(got[0]) != `{"id":1,"name":"one","n":1}` || got[1] != nil {
		t.Fatalf("batch with Redis down: %s, %v", got, err)
	}
	s := r.Stats()
	if s.RedisDown != 1 || s.DBFallbacks != 4 || s.Errors != 0 {
		t.Errorf("stats %+v: want one Redis failure, then every read from the database without retrying Redis", s)
	}

	// A port nobody listens on: the first read already falls back.
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer closed.Close()
	r = cacheaside.New(closed, e.db, e.cfg, cacheaside.Options{})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"one","n":1}` {
		t.Fatalf("Redis never up: %s, %v", got, err)
	}
}

// A case-insensitive collation finds "abc" when "ABC" is asked for. The
// caller gets the row, but it is not cached under "ABC": the change stream
// only ever updates the record of "abc", so such a fill would go stale.
func TestKeySpelledDifferentlyIsNotFilled(t *testing.T) {
	eachCache(t, "    fill: lease\n", func(t *testing.T, e *env) {
		ctx := context.Background()
		name := e.name + "_ci"
		table := "test." + name
		e.exec("CREATE TABLE `test`.`" + name + "` (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, n INT)")
		t.Cleanup(func() { e.exec("DROP TABLE `test`.`" + name + "`") })
		e.exec("INSERT INTO `test`.`" + name + "` VALUES ('abc', 1), ('def', 2)")
		cfg, err := cdc.ParseConfig([]byte("prefix: \"" + e.prefix + "\"\ntables:\n  " + table + ":\n    fill: lease\n"))
		if err != nil {
			t.Fatal(err)
		}
		r := e.readerFor(cfg, cacheaside.Options{})
		got, err := r.Get(ctx, table, "ABC")
		if err != nil || string(got) != `{"code":"abc","n":1}` {
			t.Fatalf("get ABC: %s, %v", got, err)
		}
		if rec := e.recordOf(e.prefix + table + ":ABC"); len(rec) != 0 {
			t.Errorf("the row was cached under the spelling asked for: %v", rec)
		}
		many, err := r.GetMany(ctx, table, [][]any{{"ABC"}, {"def"}, {"xyz"}})
		if err != nil || string(many[0]) != `{"code":"abc","n":1}` || string(many[1]) != `{"code":"def","n":2}` || many[2] != nil {
			t.Fatalf("batch: %s, %v", many, err)
		}
		if rec := e.recordOf(e.prefix + table + ":ABC"); len(rec) != 0 {
			t.Errorf("the batch cached the row under the spelling asked for: %v", rec)
		}
		if d := e.recordOf(e.prefix + table + ":def")["d"]; d != `{"code":"def","n":2}` {
			t.Errorf("the exact match was not filled: %q", d)
		}
		if s := r.Stats(); s.Fills != 1 {
			t.Errorf("stats %+v, want only def filled", s)
		}
	})
}

// TestWrongTypeKeyIsThatKeysMiss puts a key of another type (a Redis string,
// a memcached item in no record format) where one row's record belongs. A server error reply about one key is that key's
// problem: it is read from the database (and counted), while every other
// key, in the same GetMany and in later reads, is still answered by Redis.
func TestWrongTypeKeyIsThatKeysMiss(t *testing.T) {
	for _, fill := range []string{"none", "lease"} {
		t.Run(fill, func(t *testing.T) { eachCache(t, "    fill: "+fill+"\n", wrongTypeKey) })
	}
}

func wrongTypeKey(t *testing.T, e *env) {
	ctx := context.Background()
	for id := 1; id <= 3; id++ {
		e.insert(id, "db", id)
	}
	e.apply(cdc.OpCreate, 1, `{"id":1,"name":"cached","n":1}`, cdc.NewVersion(1, 1, 0))
	e.apply(cdc.OpCreate, 3, `{"id":3,"name":"cached","n":3}`, cdc.NewVersion(1, 3, 0))
	e.foreign(2)
	r := e.reader(cacheaside.Options{RedisBackoff: time.Hour})

	got, err := r.Get(ctx, e.table, 2)
	if err != nil || string(got) != `{"id":2,"name":"db","n":2}` {
		t.Fatalf("wrong-type key: %s, %v", got, err)
	}
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"cached","n":1}` {
		t.Fatalf("the next read of another key: %s, %v (Redis must still be asked)", got, err)
	}
	rows, err := r.GetMany(ctx, e.table, [][]any{{1}, {2}, {3}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"id":1,"name":"cached","n":1}`, `{"id":2,"name":"db","n":2}`, `{"id":3,"name":"cached","n":3}`}
	for i := range want {
		if string(rows[i]) != want[i] {
			t.Errorf("GetMany[%d] = %s, want %s", i, rows[i], want[i])
		}
	}
	s := r.Stats()
	if s.RedisDown != 0 || s.Hits != 3 || s.KeyErrors != 2 || s.DBQueries != 2 || s.Errors != 0 {
		t.Errorf("stats %+v: want no Redis-down, 3 hits, 2 key errors, 2 database queries", s)
	}
	if !e.isForeign(2) {
		t.Errorf("the read path touched the foreign key")
	}
}

// TestServerWideReplyIsRedisDown checks the other side of the wrong-type
// rule: a reply that refuses every command (here NOAUTH from a private
// server that now wants a password) means Redis is down for reads.
func TestServerWideReplyIsRedisDown(t *testing.T) {
	e := newEnv(t, "    fill: lease\n")
	ctx := context.Background()
	e.insert(1, "db", 1)
	srv := testredis.StartPrivate(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	if err := admin.ConfigSet(ctx, "requirepass", "secret").Err(); err != nil {
		t.Fatal(err)
	}
	anon := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { anon.Close() })
	r := cacheaside.New(anon, e.db, e.cfg, cacheaside.Options{RedisBackoff: time.Hour})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"db","n":1}` {
		t.Fatalf("Get: %s, %v", got, err)
	}
	if s := r.Stats(); s.RedisDown != 1 || s.KeyErrors != 0 {
		t.Errorf("stats %+v: want Redis down once, no key errors", s)
	}
}
