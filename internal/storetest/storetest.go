// Package storetest holds the apply rules of the design (section 2) as one
// table of cases, and the disorder convergence test, run by every store's
// tests (redisstore, memcachestore) against its real server: the rules are
// written once, independently of any store's code, so the stores cannot
// drift apart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// The TTLs of Config's tables, and the TTL Seed gives seeded records, so a
// test sees whether a change replaced the TTL.
const (
	TableTTL = time.Hour
	TombTTL  = 2 * time.Hour
	SeedTTL  = 3 * time.Hour
)

// Config is the tests' config under prefix: db.rep (replicate, TableTTL),
// db.rep0 (replicate, no TTL), db.ref (refresh), db.inv (invalidate), and
// TombTTL for tombstones.
func Config(prefix string) *cdc.Config {
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	cfg.TombstoneTTL = TombTTL
	cfg.Tables = map[string]*cdc.Table{
		"db.rep":  {Mode: cdc.ModeReplicate, TTL: TableTTL},
		"db.rep0": {Mode: cdc.ModeReplicate},
		"db.ref":  {Mode: cdc.ModeRefresh, TTL: TableTTL},
		"db.inv":  {Mode: cdc.ModeInvalidate, TTL: TableTTL},
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

// Store is what the tests drive.
type Store interface {
	Apply(ctx context.Context, ch cdc.Change) (cdc.Outcome, error)
	ApplyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result
}

// Backend is one store over its real server. Records are exchanged in the
// abstract form of the design's record: fields v, d, t ("1") and l, as in
// the Redis hash; each backend translates to its own format.
type Backend interface {
	// Prefix is a key prefix of the test's own.
	Prefix() string
	// Open returns a store with cfg, closed when the test ends.
	Open(tb testing.TB, cfg *cdc.Config) Store
	// Seed stores a record with a TTL (0: none). It returns false when the
	// backend's format cannot hold such a record (the case is skipped).
	Seed(tb testing.TB, key string, rec map[string]string, ttl time.Duration) bool
	// Get returns a record (empty when absent) and its TTL (0: none).
	Get(tb testing.TB, key string) (map[string]string, time.Duration)
}

// Ver is the version of the first row at pos in binlog file seq.
func Ver(seq, pos uint64) cdc.Version { return cdc.NewVersion(seq, pos, 0) }

// RowJSON is a small row.
func RowJSON(id, n int) []byte { return []byte(fmt.Sprintf(`{"id":%d,"n":%d}`, id, n)) }

// CheckRecord compares a record and its TTL (0: none) with what is expected.
func CheckRecord(t testing.TB, b Backend, name, key string, want map[string]string, ttl time.Duration) {
	t.Helper()
	got, gotTTL := b.Get(t, key)
	if want == nil {
		want = map[string]string{}
	}
	if got == nil {
		got = map[string]string{}
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: record %v, want %v", name, got, want)
	}
	if len(want) == 0 {
		return
	}
	switch {
	case ttl == 0 && gotTTL != 0:
		t.Errorf("%s: TTL %v, want none", name, gotTTL)
	case ttl > 0 && (gotTTL > ttl || gotTTL < ttl-time.Minute):
		t.Errorf("%s: TTL %v, want about %v", name, gotTTL, ttl)
	}
}

// wantAfter is the apply rules of design section 2, written out
// independently of any store: the outcome and record a change leaves.
func wantAfter(mode cdc.Mode, tableTTL time.Duration, seed map[string]string, op cdc.Op, v cdc.Version, row string, untyped bool) (cdc.Outcome, map[string]string, time.Duration) {
	sv, hasV := seed["v"]
	if mode == cdc.ModeRefresh && seed == nil {
		return cdc.OutcomeIgnored, nil, 0
	}
	if hasV && cdc.Version(sv) >= v {
		return cdc.OutcomeStale, seed, SeedTTL
	}
	switch {
	case op == cdc.OpDelete:
		return cdc.OutcomeDeleted, map[string]string{"v": string(v), "t": "1"}, TombTTL
	case untyped: // a row without canonical types: a marker, counted apart
		return cdc.OutcomeUntyped, map[string]string{"v": string(v)}, TombTTL
	case mode == cdc.ModeInvalidate:
		return cdc.OutcomeApplied, map[string]string{"v": string(v)}, TombTTL
	}
	return cdc.OutcomeApplied, map[string]string{"v": string(v), "d": row}, tableTTL
}

// Rules applies every op at every version relation to every stored state
// in every mode, and checks outcome, record and TTL against wantAfter.
func Rules(t *testing.T, b Backend) {
	prefix := b.Prefix()
	cfg := Config(prefix)
	s := b.Open(t, cfg)
	ctx := context.Background()

	stored := Ver(7, 1000)
	seeds := []struct {
		name   string
		fields map[string]string // nil: absent
	}{
		{"absent", nil},
		{"row", map[string]string{"v": string(stored), "d": `{"id":1,"old":true}`}},
		{"tombstone", map[string]string{"v": string(stored), "t": "1"}},
		{"marker", map[string]string{"v": string(stored)}},
		{"lease", map[string]string{"l": "tok-1"}},
		{"lease+v", map[string]string{"l": "tok-2", "v": string(stored)}},
		{"no-v-row", map[string]string{"d": `{"id":1}`}},
	}
	versions := map[string]cdc.Version{
		"older":        Ver(7, 999),
		"equal":        stored,
		"newer":        Ver(7, 1001),
		"older-file":   Ver(6, 99999999),
		"newer-file":   Ver(8, 0),
		"next-row-idx": cdc.NewVersion(7, 1000, 1),
	}
	tables := []string{"db.rep", "db.rep0", "db.ref", "db.inv"}
	ops := []cdc.Op{cdc.OpCreate, cdc.OpUpdate, cdc.OpRead, cdc.OpDelete}
	n, ran := 0, 0
	for _, table := range tables {
		tc, _ := cfg.Lookup(table)
		for _, seed := range seeds {
			for _, op := range ops {
				for vname, v := range versions {
					n++
					untyped := op != cdc.OpDelete && n%3 == 0 // every table, seed and op meets both
					key := fmt.Sprintf("%s%s:%d", prefix, table, n)
					name := fmt.Sprintf("%s/%s/%s/%s/untyped=%v", table, seed.name, op, vname, untyped)
					if seed.fields != nil && !b.Seed(t, key, seed.fields, SeedTTL) {
						continue
					}
					ran++
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
					CheckRecord(t, b, name, key, wantRec, wantTTL)
				}
			}
		}
	}
	if ran < n*5/7 {
		t.Fatalf("only %d of %d cases ran: the backend refused too many seeds", ran, n)
	}
}

// Sequences checks runs of changes to one key: a delete then replays, a
// re-insert, refresh mode over nothing and over a lease, ignored changes.
func Sequences(t *testing.T, b Backend) {
	prefix := b.Prefix()
	s := b.Open(t, Config(prefix))
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
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: Ver(1, 10), Row: RowJSON(1, 1)}, cdc.OutcomeApplied)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: Ver(1, 20)}, cdc.OutcomeDeleted)
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: Ver(1, 15), Row: RowJSON(1, 2)}, cdc.OutcomeStale)
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: Ver(1, 10), Row: RowJSON(1, 1)}, cdc.OutcomeStale)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: Ver(1, 20)}, cdc.OutcomeStale)
	CheckRecord(t, b, "delete then older upsert", key, map[string]string{"v": string(Ver(1, 20)), "t": "1"}, TombTTL)
	// A re-insert after the delete brings it back.
	apply(cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: Ver(1, 30), Row: RowJSON(1, 3)}, cdc.OutcomeApplied)
	CheckRecord(t, b, "re-insert", key, map[string]string{"v": string(Ver(1, 30)), "d": string(RowJSON(1, 3))}, TableTTL)

	// Refresh mode: nothing is created for an absent key, a lease makes the
	// change apply, and the lease is cleared.
	rkey := prefix + "db.ref:1"
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.ref", Key: rkey, Version: Ver(1, 10), Row: RowJSON(1, 1)}, cdc.OutcomeIgnored)
	apply(cdc.Change{Op: cdc.OpDelete, Table: "db.ref", Key: rkey, Version: Ver(1, 11)}, cdc.OutcomeIgnored)
	CheckRecord(t, b, "refresh absent", rkey, nil, 0)
	b.Seed(t, rkey, map[string]string{"l": "token"}, 0)
	apply(cdc.Change{Op: cdc.OpUpdate, Table: "db.ref", Key: rkey, Version: Ver(1, 12), Row: RowJSON(1, 2)}, cdc.OutcomeApplied)
	CheckRecord(t, b, "refresh over lease", rkey, map[string]string{"v": string(Ver(1, 12)), "d": string(RowJSON(1, 2))}, TableTTL)

	// Ignored changes do not touch the cache.
	ikey := prefix + "db.rep:ignored"
	apply(cdc.Change{Op: cdc.OpIgnore, Table: "db.rep", Key: ikey, Version: Ver(1, 1), Reason: "heartbeat"}, cdc.OutcomeIgnored)
	CheckRecord(t, b, "ignored", ikey, nil, 0)

	// A batch applies in order: a later change to the same key sees the
	// earlier one, and each keeps its own outcome.
	bkey := prefix + "db.rep:batch"
	res := s.ApplyBatch(ctx, []cdc.Change{
		{Op: cdc.OpUpdate, Table: "db.rep", Key: bkey, Version: Ver(2, 10), Row: RowJSON(2, 1)},
		{Op: cdc.OpUpdate, Table: "db.rep", Key: bkey, Version: Ver(2, 5), Row: RowJSON(2, 2)},
		{Op: cdc.OpDelete, Table: "db.rep", Key: bkey, Version: Ver(2, 20)},
		{Op: cdc.OpUpdate, Table: "db.rep", Key: bkey, Version: Ver(2, 20), Row: RowJSON(2, 3)},
		{Op: cdc.OpUpdate, Table: "db.ref", Key: prefix + "db.ref:batch", Version: Ver(2, 1), Row: RowJSON(2, 4)},
	})
	want := []cdc.Outcome{cdc.OutcomeApplied, cdc.OutcomeStale, cdc.OutcomeDeleted, cdc.OutcomeStale, cdc.OutcomeIgnored}
	for i, r := range res {
		if r.Err != nil || r.Outcome != want[i] {
			t.Errorf("batch change %d: %v %v, want %v", i, r.Outcome, r.Err, want[i])
		}
	}
	CheckRecord(t, b, "batch", bkey, map[string]string{"v": string(Ver(2, 20)), "t": "1"}, TombTTL)
}

// OnlyListed checks that changes to unlisted tables are ignored when the
// config says only_listed.
func OnlyListed(t *testing.T, b Backend) {
	cfg := Config(b.Prefix())
	cfg.OnlyListed = true
	s := b.Open(t, cfg)
	key := b.Prefix() + "db.other:1"
	out, err := s.Apply(context.Background(), cdc.Change{Op: cdc.OpCreate, Table: "db.other", Key: key, Version: Ver(1, 1), Row: RowJSON(1, 1)})
	if err != nil || out != cdc.OutcomeIgnored {
		t.Fatalf("unlisted table: %v %v, want ignored", out, err)
	}
	CheckRecord(t, b, "unlisted", key, nil, 0)
}

// Invalid checks that changes that can never apply fail with cdc.ErrInvalid,
// alone, and write nothing.
func Invalid(t *testing.T, b Backend) {
	prefix := b.Prefix()
	s := b.Open(t, Config(prefix))
	key := prefix + "db.rep:1"
	for name, ch := range map[string]cdc.Change{
		"no key":      {Op: cdc.OpCreate, Table: "db.rep", Version: Ver(1, 1), Row: RowJSON(1, 1)},
		"no row":      {Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: Ver(1, 1)},
		"no version":  {Op: cdc.OpDelete, Table: "db.rep", Key: key},
		"bad version": {Op: cdc.OpDelete, Table: "db.rep", Key: key, Version: "00000000010000000000000000000000000000x1"},
		"unknown op":  {Op: 'z', Table: "db.rep", Key: key, Version: Ver(1, 1)},
	} {
		out, err := s.Apply(context.Background(), ch)
		if !errors.Is(err, cdc.ErrInvalid) || out != cdc.OutcomeFailed {
			t.Errorf("%s: %v %v, want cdc.ErrInvalid", name, out, err)
		}
	}
	CheckRecord(t, b, "invalid", key, nil, 0)
	res := s.ApplyBatch(context.Background(), []cdc.Change{
		{Op: cdc.OpCreate, Table: "db.rep", Version: Ver(1, 1), Row: RowJSON(1, 1)},
		{Op: cdc.OpCreate, Table: "db.rep", Key: key, Version: Ver(1, 1), Row: RowJSON(1, 1)},
	})
	if !errors.Is(res[0].Err, cdc.ErrInvalid) || res[1].Err != nil || res[1].Outcome != cdc.OutcomeApplied {
		t.Fatalf("batch with one invalid change: %+v", res)
	}
}

// DisorderedStream returns, for keys many rows, a shuffled stream of
// upserts and deletes with versions increasing per key and 30% duplicates,
// and the record each key must end with (that of its newest change).
func DisorderedStream(prefix, table string, keys int, rnd *rand.Rand) ([]cdc.Change, map[string]map[string]string) {
	var stream []cdc.Change
	want := map[string]map[string]string{}
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("%s%s:%d", prefix, table, k)
		seq, pos := uint64(3), uint64(0)
		for i, n := 0, 1+rnd.IntN(6); i < n; i++ {
			if rnd.IntN(5) == 0 { // binlog rotation
				seq, pos = seq+1, 0
			}
			pos += 1 + uint64(rnd.IntN(1000))
			v := cdc.NewVersion(seq, pos, uint64(rnd.IntN(3)))
			ch := cdc.Change{Op: cdc.OpUpdate, Table: table, Key: key, Version: v, Server: "srv", ServerID: 1}
			if rnd.IntN(3) == 0 {
				ch.Op = cdc.OpDelete
				want[key] = map[string]string{"v": string(v), "t": "1"}
			} else {
				ch.Row = RowJSON(k, i)
				want[key] = map[string]string{"v": string(v), "d": string(ch.Row)}
			}
			stream = append(stream, ch)
		}
	}
	for i, n := 0, len(stream)*3/10; i < n; i++ {
		stream = append(stream, stream[rnd.IntN(len(stream))])
	}
	rnd.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	return stream, want
}

// Convergence applies a disordered stream with duplicates from 16
// goroutines at once, one change a call (Apply) and in batches of several
// sizes (ApplyBatch), and checks that every key ends at its newest change:
// nothing missing, stale or resurrected.
func Convergence(t *testing.T, b Backend) {
	for _, via := range []string{"Apply", "ApplyBatch"} {
		t.Run(via, func(t *testing.T) {
			prefix := b.Prefix() + via + ":" // each run its own keys
			s := b.Open(t, Config(prefix))
			rnd := rand.New(rand.NewPCG(42, uint64(len(via))))
			stream, want := DisorderedStream(prefix, "db.rep", 300, rnd)

			const workers = 16
			var wg sync.WaitGroup
			counts := make([][cdc.NumOutcomes]int, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					mine := stream[w*len(stream)/workers : (w+1)*len(stream)/workers]
					if via == "Apply" {
						for _, ch := range mine {
							out, err := s.Apply(ctx, ch)
							if err != nil {
								t.Error(err)
								return
							}
							counts[w][out]++
						}
						return
					}
					for len(mine) > 0 {
						n := min(len(mine), 1+w*3)
						for _, r := range s.ApplyBatch(ctx, mine[:n]) {
							if r.Err != nil {
								t.Error(r.Err)
								return
							}
							counts[w][r.Outcome]++
						}
						mine = mine[n:]
					}
				}()
			}
			wg.Wait()
			var total [cdc.NumOutcomes]int
			for _, cw := range counts {
				for o, n := range cw {
					total[o] += n
				}
			}
			if total[cdc.OutcomeStale] == 0 || total[cdc.OutcomeApplied]+total[cdc.OutcomeDeleted] < len(want) {
				t.Errorf("outcomes %v: want some stale and at least one write per key", total)
			}
			for key, rec := range want {
				got, _ := b.Get(t, key)
				if !maps.Equal(got, rec) {
					t.Errorf("%s: %v, want %v", key, got, rec)
				}
			}
		})
	}
}

// Merging applies 1,600 changes as concurrent Apply calls (push requests)
// on one store and checks that each call gets its own outcome and that the
// store merged them: fewer cache calls than changes. calls reads the
// store's counters (cache calls sent, changes they carried).
func Merging(t *testing.T, b Backend, calls func(Store) (sent, carried int64)) {
	prefix := b.Prefix() + "merge:"
	s := b.Open(t, Config(prefix))
	sent0, carried0 := calls(s)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("%sdb.rep:%d", prefix, w*100+i)
				ch := cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: key, Version: Ver(1, uint64(1+i)), Row: RowJSON(i, i), Server: "srv", ServerID: 1}
				for _, want := range []cdc.Outcome{cdc.OutcomeApplied, cdc.OutcomeStale} {
					if out, err := s.Apply(context.Background(), ch); err != nil || out != want {
						t.Errorf("%s: %v %v, want %v", key, out, err, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	sent, carried := calls(s)
	sent, carried = sent-sent0, carried-carried0
	if carried != 1600 || sent >= carried {
		t.Errorf("%d cache calls carried %d changes: want 1600 changes in fewer calls", sent, carried)
	}
	t.Logf("%d cache calls for %d changes", sent, carried)
}
