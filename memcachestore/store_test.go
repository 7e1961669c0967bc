package memcachestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
)

var ver, rowJSON = storetest.Ver, storetest.RowJSON

func up(table, key string, v cdc.Version, n int) cdc.Change {
	return cdc.Change{Op: cdc.OpUpdate, Table: table, Key: key, Version: v, Row: rowJSON(n, n), Server: "srv", ServerID: 1}
}

// A truncate raises the watermark; records at or below it are absent to
// every later change (refresh mode ignores them, replicate overwrites them),
// older changes are stale, newer records survive, an older truncate is stale.
func TestTruncateWatermark(t *testing.T) {
	b := privateBackend(t)
	cfg := storetest.Config(b.prefix)
	s := newTestStore(t, b.c, cfg, Options{})
	ctx := context.Background()
	p := b.prefix
	res := s.ApplyBatch(ctx, []cdc.Change{
		up("db.rep", p+"db.rep:old", ver(4, 1), 1),
		up("db.rep", p+"db.rep:new", ver(6, 1), 2),
		up("db.ref", p+"db.ref:old", ver(4, 1), 3),
	})
	b.Seed(t, p+"db.ref:old", map[string]string{"v": string(ver(4, 1)), "d": "{}"}, 0)
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, table := range []string{"db.rep", "db.ref"} {
		if out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: table, Version: ver(5, 0), Server: "srv"}); err != nil || out != cdc.OutcomeApplied {
			t.Fatalf("truncate %s: %v %v", table, out, err)
		}
	}
	steps := []struct {
		ch   cdc.Change
		want cdc.Outcome
	}{
		{cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(4, 9)}, cdc.OutcomeStale},
		{cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(5, 0)}, cdc.OutcomeApplied},
		{up("db.rep", p+"db.rep:x", ver(4, 2), 4), cdc.OutcomeStale},
		{up("db.rep", p+"db.rep:x", ver(5, 0), 4), cdc.OutcomeStale},
		{up("db.rep", p+"db.rep:new", ver(5, 5), 5), cdc.OutcomeStale},
		{up("db.ref", p+"db.ref:old", ver(5, 1), 6), cdc.OutcomeIgnored},
		{up("db.rep", p+"db.rep:old", ver(5, 1), 7), cdc.OutcomeApplied},
	}
	for i, st := range steps {
		if out, err := s.Apply(ctx, st.ch); err != nil || out != st.want {
			t.Errorf("step %d (%s %s at %s): %v %v, want %v", i, st.ch.Op, st.ch.Key, st.ch.Version, out, err, st.want)
		}
	}
	storetest.CheckRecord(t, b, "rewritten", p+"db.rep:old", map[string]string{"v": string(ver(5, 1)), "d": string(rowJSON(7, 7))}, storetest.TableTTL)
	storetest.CheckRecord(t, b, "newer kept", p+"db.rep:new", map[string]string{"v": string(ver(6, 1)), "d": string(rowJSON(2, 2))}, storetest.TableTTL)
	storetest.CheckRecord(t, b, "never written", p+"db.rep:x", nil, 0)
}

// A down node fails its changes transiently (never an outcome that would be
// acknowledged, never cdc.ErrInvalid); restarted, the same changes apply.
func TestNodeDown(t *testing.T) {
	srv := testmemcache.Start(t)
	c := newClient(t, srv.Addr())
	s := newTestStore(t, c, storetest.Config(""), Options{})
	ctx := context.Background()
	batch := []cdc.Change{up("db.rep", "db.rep:1", ver(1, 1), 1), {Op: cdc.OpDelete, Table: "db.rep", Key: "db.rep:2", Version: ver(1, 2)},
		{Op: cdc.OpTruncate, Table: "db.rep0", Version: ver(1, 3)}}
	if res := s.ApplyBatch(ctx, batch); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	srv.Kill()
	for i, r := range s.ApplyBatch(ctx, batch) {
		if r.Err == nil || r.Outcome != cdc.OutcomeFailed || errors.Is(r.Err, cdc.ErrInvalid) {
			t.Errorf("change %d with memcached down: %v %v, want a transient failure", i, r.Outcome, r.Err)
		}
	}
	srv.Restart()
	want := []cdc.Outcome{cdc.OutcomeApplied, cdc.OutcomeDeleted, cdc.OutcomeApplied}
	for i, r := range s.ApplyBatch(ctx, batch) {
		if r.Err != nil || r.Outcome != want[i] {
			t.Errorf("change %d after restart: %v %v, want %v", i, r.Outcome, r.Err, want[i])
		}
	}
	// A restart between two calls leaves the pooled connections closed by
	// the old process: the next call still succeeds, on new ones.
	srv.Restart()
	for i, r := range s.ApplyBatch(ctx, batch) {
		if r.Err != nil || r.Outcome != want[i] {
			t.Errorf("change %d after a quiet restart: %v %v, want %v", i, r.Outcome, r.Err, want[i])
		}
	}
}

// Several nodes: keys spread over all of them, the rules hold across the
// ring, and one node down fails only the keys it holds.
func TestRing(t *testing.T) {
	var addrs []string
	var srvs []*testmemcache.Server
	for i := 0; i < 3; i++ {
		srv := testmemcache.Start(t)
		srvs, addrs = append(srvs, srv), append(addrs, srv.Addr())
	}
	c := newClient(t, addrs...)
	storetest.Convergence(t, backend{c: c, prefix: "ring:"})

	s := newTestStore(t, c, storetest.Config(""), Options{})
	var batch []cdc.Change
	per := map[string]int{}
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("db.rep:%d", i)
		per[c.Node(key)]++
		batch = append(batch, up("db.rep", key, ver(2, uint64(i+1)), i))
	}
	for _, a := range addrs {
		if per[a] < 50 {
			t.Errorf("node %s holds %d of 300 keys: %v", a, per[a], per)
		}
	}
	// Kill a node that does not hold db.rep's watermark: every change of a
	// table needs its watermark's node (without it the store cannot tell a
	// truncated record), so killing that one fails the whole table.
	dead := 0
	for addrs[dead] == c.Node(TruncatedKey("", "db.rep")) {
		dead++
	}
	srvs[dead].Kill()
	failed := 0
	for i, r := range s.ApplyBatch(context.Background(), batch) {
		down := c.Node(batch[i].Key) == addrs[dead]
		if down != (r.Err != nil) {
			t.Fatalf("%s on %s (down: %v): %v %v", batch[i].Key, c.Node(batch[i].Key), down, r.Outcome, r.Err)
		}
		if down {
			failed++
		}
	}
	if failed != per[addrs[dead]] {
		t.Errorf("%d failed, want %d", failed, per[addrs[dead]])
	}
	srvs[dead].Restart() // so Close can write the checkpoint, wherever it lives
}

// Consistent hashing: a fourth node takes about a quarter of the keys and
// moves no key between the other three.
func TestRingMovesFewKeys(t *testing.T) {
	three := newRing([]string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"})
	four := newRing([]string{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"})
	moved := 0
	const keys = 20000
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("shop.orders:%d", i)
		a, b := three.node(k), four.node(k)
		if a != b {
			if b != 3 {
				t.Fatalf("%s moved from node %d to %d, not to the new node", k, a, b)
			}
			moved++
		}
	}
	if moved < keys/6 || moved > keys/3 {
		t.Errorf("%d of %d keys moved to the fourth node, want about a quarter", moved, keys)
	}
}

// One batch is one read round trip and one write round trip, however many
// rows it holds, and a pipeline larger than the socket buffers (about 20 MB
// each way) neither deadlocks nor loses an answer.
func TestBatchPipelined(t *testing.T) {
	srv := testmemcache.StartSize(t, 256)
	c := newClient(t, srv.Addr())
	s := newTestStore(t, c, storetest.Config(""), Options{})
	row := []byte(`{"id":1,"pad":"` + strings.Repeat("x", 10_000) + `"}`)
	var batch []cdc.Change
	for i := 0; i < 2000; i++ {
		batch = append(batch, cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: fmt.Sprintf("db.rep:%d", i), Version: ver(1, uint64(i+1)), Row: row})
	}
	before := s.Stats()
	for i, r := range s.ApplyBatch(context.Background(), batch) {
		if r.Err != nil || r.Outcome != cdc.OutcomeApplied {
			t.Fatalf("change %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	if n := s.Stats().ApplyPipelines - before.ApplyPipelines; n != 1 {
		t.Errorf("%d read-then-write rounds for one batch, want 1", n)
	}
	lines, err := c.Raw(context.Background(), srv.Addr(), "stats", "END")
	if err != nil {
		t.Fatal(err)
	}
	// 2000 reads and the watermark's, 2000 writes (no server: no checkpoint).
	for _, want := range []string{"STAT cmd_get 2001", "STAT cmd_set 2000"} {
		if !slices.Contains(lines, want) {
			t.Errorf("stats lack %q: %q", want, lines)
		}
	}
}

// Writers racing on one key, each a store of its own (as function
// instances are: one store merges its own concurrent calls, so they never
// race each other): compare-and-swap losers read again, and the newest
// version wins.
func TestHotKeyRaces(t *testing.T) {
	b := privateBackend(t)
	var wg sync.WaitGroup
	stores := make([]*Store, 8)
	for w := range stores {
		stores[w] = newTestStore(t, b.c, storetest.Config(""), Options{Attempts: 1000})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				v := ver(1, uint64(1+i*8+w))
				if _, err := stores[w].Apply(context.Background(), up("db.rep", "db.rep:hot", v, i*8+w)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	storetest.CheckRecord(t, b, "hot", "db.rep:hot", map[string]string{"v": string(ver(1, 800)), "d": string(rowJSON(799, 799))}, storetest.TableTTL)
	var races int64
	for _, s := range stores {
		races += s.Stats().Races
	}
	if races == 0 {
		t.Errorf("eight writers on one key lost no race")
	}
}

// An item that is not a record (written by something else) fails its own
// change, transiently, and is not overwritten; the batch's others apply.
func TestForeignItem(t *testing.T) {
	b := privateBackend(t)
	s := newTestStore(t, b.c, storetest.Config(""), Options{})
	ctx := context.Background()
	set := &Op{Key: "db.rep:foreign", Set: true, Value: []byte("hello")}
	b.c.Do(ctx, []*Op{set})
	res := s.ApplyBatch(ctx, []cdc.Change{up("db.rep", "db.rep:foreign", ver(1, 1), 1), up("db.rep", "db.rep:ok", ver(1, 1), 2)})
	if res[0].Err == nil || errors.Is(res[0].Err, cdc.ErrInvalid) || res[1].Err != nil {
		t.Fatalf("results %+v", res)
	}
	get := &Op{Key: "db.rep:foreign"}
	b.c.Do(ctx, []*Op{get})
	if string(get.Value) != "hello" {
		t.Fatalf("foreign item overwritten: %q", get.Value)
	}
}

// With -M and no memory left, memcached refuses writes: a transient failure
// (answer 503 and retry), never an acknowledgement or an eviction.
func TestOutOfMemory(t *testing.T) {
	srv := testmemcache.StartSize(t, 2)
	c := newClient(t, srv.Addr())
	s := newTestStore(t, c, storetest.Config(""), Options{})
	row := []byte(`{"pad":"` + strings.Repeat("x", 50_000) + `"}`)
	var failed error
	for i := 0; i < 2000 && failed == nil; i++ {
		_, failed = s.Apply(context.Background(), cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: fmt.Sprintf("db.rep:%d", i), Version: ver(1, 1), Row: row})
	}
	if failed == nil || errors.Is(failed, cdc.ErrInvalid) || !strings.Contains(failed.Error(), "out of memory") {
		t.Fatalf("filling memcached -M: %v, want a transient out-of-memory error", failed)
	}
	// Nothing was evicted: the first row is still there.
	b := backend{c: c}
	if got, _ := b.Get(t, "db.rep:0"); got["d"] != string(row) {
		t.Fatalf("first row evicted: %v", got)
	}
}

func TestCheckpoint(t *testing.T) {
	b := privateBackend(t)
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	s := newTestStore(t, b.c, storetest.Config(b.prefix), Options{CheckpointEvery: time.Hour, Now: func() time.Time { return now }})
	ch := up("db.rep", b.prefix+"db.rep:1", ver(5, 100), 1)
	ch.ServerID, ch.CommitMs = 7, 1111
	if _, err := s.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpoint(ctx, b.c, b.prefix, "db.rep")
	want := Checkpoint{Server: "srv", Version: ver(5, 100), CommitMs: 1111, AppliedMs: now.UnixMilli(), ServerID: 7}
	if err != nil || cp != want {
		t.Fatalf("checkpoint %+v %v, want %+v", cp, err, want)
	}
	// A second store (another instance) with an older position never lowers it.
	other := newTestStore(t, b.c, storetest.Config(b.prefix), Options{CheckpointEvery: time.Hour})
	older := up("db.rep0", b.prefix+"db.rep0:1", ver(5, 50), 1)
	if _, err := other.Apply(ctx, older); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cps, err := ReadCheckpoints(ctx, b.c, b.prefix)
	if err != nil || cps.Servers["srv"].Version != ver(5, 100) || cps.Tables["db.rep0"] != "srv" {
		t.Fatalf("after an older instance: %+v %v", cps, err)
	}
	if cp, _ := ReadCheckpoint(ctx, b.c, b.prefix, "db.unknown"); cp != (Checkpoint{}) {
		t.Fatalf("unknown table: %+v", cp)
	}
}

func TestKey(t *testing.T) {
	long := "p:db.t:" + strings.Repeat("k", 300)
	for in, want := range map[string]string{
		"inventory.customers:1004": "inventory.customers:1004",
		"db.t:a b%25\x01é":         "db.t:a%20b%2525%01%C3%A9",
		long:                       "p:#" + "e3b4",
	} {
		got := Key("p:", in)
		if in == long {
			if len(got) != len("p:#")+64 || !strings.HasPrefix(got, "p:#") {
				t.Errorf("long key: %q", got)
			}
			continue
		}
		if got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
	if TruncatedKey("p:", "db.t") != "p:__cdc:truncated:db.t" || CheckpointKey("p:") != "p:__cdc:checkpoint" {
		t.Error(TruncatedKey("p:", "db.t"), CheckpointKey("p:"))
	}
}

func TestParseRecord(t *testing.T) {
	v := string(ver(3, 4))
	for in, want := range map[string]Record{
		"D" + v + `{"a":1}`: {Kind: KindRow, Version: cdc.Version(v), Row: []byte(`{"a":1}`)},
		"T" + v:             {Kind: KindTombstone, Version: cdc.Version(v)},
		"M" + v:             {Kind: KindMarker, Version: cdc.Version(v)},
		"Ltok.123":          {Kind: KindLease, Lease: "tok.123"},
		"Ltok.123:" + v:     {Kind: KindLease, Lease: "tok.123", Version: cdc.Version(v)},
	} {
		got, err := ParseRecord([]byte(in))
		if err != nil || got.Kind != want.Kind || got.Version != want.Version || string(got.Row) != string(want.Row) || got.Lease != want.Lease {
			t.Errorf("ParseRecord(%q) = %+v %v", in, got, err)
		}
		if back := string(got.Append(nil)); back != in {
			t.Errorf("Append: %q, want %q", back, in)
		}
	}
	for _, bad := range []string{"", "X" + v, "D123", "T" + v + "x", "L", "Ltok:12", "L:" + v} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("ParseRecord(%q) accepted", bad)
		}
	}
}

func TestExptime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{{0, 0}, {time.Millisecond, 1}, {time.Hour, 3600}, {30 * 24 * time.Hour, maxRelative}, {31 * 24 * time.Hour, now.Unix() + 31*24*3600}} {
		if got := exptime(tc.ttl, now); got != tc.want {
			t.Errorf("exptime(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}
