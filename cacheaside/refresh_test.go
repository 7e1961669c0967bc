package cacheaside_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// instance is a store of its own over the test's Redis: another function
// instance. Its clock stands still, so after its first checkpoint write it
// never writes another: what it processes stays in its memory, as in the
// second before a real instance's next write (or longer, for a slow one).
func (e *env) instance() applier {
	e.t.Helper()
	frozen := time.Now()
	now := func() time.Time { return frozen }
	var s interface {
		applier
		Close(context.Context) error
	}
	if e.mc != nil {
		s = memcachestore.New(e.mc, e.cfg, memcachestore.Options{Now: now})
	} else {
		s = redisstore.New(e.rdb, e.cfg, redisstore.Options{Now: now})
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// storedCheckpoint is the checkpoint version stored for the table's server.
func (e *env) storedCheckpoint() cdc.Version {
	e.t.Helper()
	ctx := context.Background()
	if e.mc != nil {
		cp, err := memcachestore.ReadCheckpoint(ctx, e.mc, e.prefix, e.table)
		if err != nil {
			e.t.Fatal(err)
		}
		return cp.Version
	}
	cp, err := redisstore.ReadCheckpoint(ctx, e.rdb, e.prefix, e.table)
	if err != nil {
		e.t.Fatal(err)
	}
	return cp.Version
}

func applyOn(t *testing.T, s applier, e *env, op cdc.Op, id int, row string, v cdc.Version) cdc.Outcome {
	t.Helper()
	ch := cdc.Change{Op: op, Table: e.table, Key: e.key(id), Version: v, Server: "srv"}
	if row != "" {
		ch.Row = []byte(row)
	}
	out, err := s.Apply(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefreshFillNeverBelowAProcessedChange is issue 12's sequence: in
// refresh mode a change to a row with no record leaves nothing behind, and
// the stored checkpoint lags the instance that processed it. A fill in that
// window must still carry a version at least the change's, so a late
// redelivery of an older change, from another instance, is stale: it must
// not overwrite the newer row read from MySQL (update), nor bring back a
// row MySQL deleted (negative_ttl).
func TestRefreshFillNeverBelowAProcessedChange(t *testing.T) {
	eachCache(t, "    mode: refresh\n    fill: lease\n    negative_ttl: 1h\n", refreshFillNeverBelowAProcessedChange)
}

func refreshFillNeverBelowAProcessedChange(t *testing.T, e *env) {
	ctx := context.Background()
	a, b := e.instance(), e.instance()
	c0, v0, v1 := cdc.NewVersion(5, 100, 0), cdc.NewVersion(5, 200, 0), cdc.NewVersion(5, 300, 0)

	// Instance a processes C0 (no record: ignored) and writes its first
	// checkpoint, C0; after that its checkpoint stays in its memory.
	if out := applyOn(t, a, e, cdc.OpUpdate, 9, `{"id":9,"name":"x","n":9}`, c0); out != cdc.OutcomeIgnored {
		t.Fatalf("C0: %v", out)
	}
	if cp := e.storedCheckpoint(); cp != c0 {
		t.Fatalf("stored checkpoint %q: want C0", cp)
	}

	// V1 commits in MySQL (row 1 renamed "new"; row 2 deleted) and reaches
	// instance a: no records, ignored.
	e.insert(1, "new", 1)
	if out := applyOn(t, a, e, cdc.OpUpdate, 1, `{"id":1,"name":"new","n":1}`, v1); out != cdc.OutcomeIgnored {
		t.Fatalf("V1 update: %v", out)
	}
	if out := applyOn(t, a, e, cdc.OpDelete, 2, "", v1); out != cdc.OutcomeIgnored {
		t.Fatalf("V1 delete: %v", out)
	}
	if cp := e.storedCheckpoint(); cp != c0 {
		t.Fatalf("stored checkpoint moved to %q: the test needs it to lag", cp)
	}

	r := e.reader(cacheaside.Options{})
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"new","n":1}` {
		t.Fatalf("fill: %s, %v", got, err)
	}
	if _, err := r.Get(ctx, e.table, 2); !errors.Is(err, cacheaside.ErrNotFound) {
		t.Fatalf("negative fill: %v", err)
	}
	if s := r.Stats(); s.Fills != 2 {
		t.Fatalf("stats %+v: want two fills", s)
	}
	for _, id := range []int{1, 2} {
		if v := cdc.Version(e.record(id)["v"]); v < v1 {
			t.Errorf("record %d filled at version %q, below the processed change V1 %q", id, v, v1)
		}
	}

	// The older V0 (C0 < V0 < V1) is redelivered late, to instance b.
	if out := applyOn(t, b, e, cdc.OpUpdate, 1, `{"id":1,"name":"old","n":0}`, v0); out != cdc.OutcomeStale {
		t.Errorf("late V0 update over the fill: %v, want stale", out)
	}
	if out := applyOn(t, b, e, cdc.OpUpdate, 2, `{"id":2,"name":"gone","n":2}`, v0); out != cdc.OutcomeStale {
		t.Errorf("late V0 update over the negative fill: %v, want stale", out)
	}
	if got, err := r.Get(ctx, e.table, 1); err != nil || string(got) != `{"id":1,"name":"new","n":1}` {
		t.Errorf("after the late V0: %s, %v; MySQL has name=new", got, err)
	}
	if got, err := r.Get(ctx, e.table, 2); !errors.Is(err, cacheaside.ErrNotFound) {
		t.Errorf("after the late V0: %s, %v; MySQL has no row 2", got, err)
	}
}
