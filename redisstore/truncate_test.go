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
