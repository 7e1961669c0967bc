package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// leaseEnv is a Redis client, a key prefix private to the test (its keys
// are deleted at the end) and a Store writing under it.
type leaseEnv struct {
	c      *redis.Client
	prefix string
	table  string
	store  *Store
}

func newLeaseEnv(t *testing.T, cfgYAML string) *leaseEnv {
	t.Helper()
	c, prefix := testredis.Shared(t)
	cfg, err := cdc.ParseConfig([]byte("prefix: \"" + prefix + "\"\n" + cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, c, cfg, Options{})
	return &leaseEnv{c: c, prefix: prefix, table: "shop.items", store: s}
}

func (e *leaseEnv) key(id string) string { return e.prefix + e.table + ":" + id }

func (e *leaseEnv) acquire(t *testing.T, key string, ttl time.Duration) Lease {
	t.Helper()
	ls, err := AcquireLeases(context.Background(), e.c, e.prefix, e.table, []string{key}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return ls[0]
}

func (e *leaseEnv) fill(t *testing.T, f Fill) bool {
	t.Helper()
	ok, err := FillLeases(context.Background(), e.c, []Fill{f})
	if err != nil {
		t.Fatal(err)
	}
	return ok[0]
}

func (e *leaseEnv) record(t *testing.T, key string) map[string]string {
	t.Helper()
	m, err := e.c.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *leaseEnv) apply(t *testing.T, op cdc.Op, key string, row []byte, v cdc.Version) cdc.Outcome {
	t.Helper()
	out, err := e.store.Apply(context.Background(), cdc.Change{Op: op, Table: e.table, Key: key, Row: row, Version: v, Server: "srv"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *leaseEnv) setCheckpoint(t *testing.T, v cdc.Version) {
	t.Helper()
	if err := e.c.HSet(context.Background(), CheckpointKey(e.prefix), "table|"+e.table, "srv", "srv", string(v)).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseGrantFillAndHit(t *testing.T) {
	e := newLeaseEnv(t, "")
	ctx := context.Background()
	key := e.key("1")
	cp := cdc.NewVersion(3, 500, 0)
	e.setCheckpoint(t, cp)

	l := e.acquire(t, key, 2*time.Second)
	if l.State != LeaseGranted || l.Checkpoint != cp || l.Token == "" {
		t.Fatalf("first acquire: %+v, want granted with checkpoint %s", l, cp)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("a lease on an absent row expires with the lease: PTTL %v", ttl)
	}
	if got := e.acquire(t, key, 2*time.Second); got.State != LeaseBusy {
		t.Errorf("second acquire: %+v, want busy", got)
	}
	if !e.fill(t, Fill{Key: key, Lease: l, Row: []byte(`{"id":1}`)}) {
		t.Fatal("fill under a held lease failed")
	}
	rec := e.record(t, key)
	if rec["d"] != `{"id":1}` || rec["v"] != string(cp) || rec["l"] != "" || len(rec) != 2 {
		t.Errorf("record after fill: %v, want {d, v=checkpoint}", rec)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl != -1 {
		t.Errorf("a table without ttl keeps the filled row: PTTL %v", ttl)
	}
	if got := e.acquire(t, key, time.Second); got.State != LeaseHit || string(got.Row) != `{"id":1}` {
		t.Errorf("acquire on a filled row: %+v, want a hit", got)
	}
	// A second fill with the spent lease does nothing.
	if e.fill(t, Fill{Key: key, Lease: l, Row: []byte(`{"id":1,"old":true}`)}) {
		t.Error("a spent lease filled again")
	}
	// A later change applies over the fill; an older redelivery does not.
	if out := e.apply(t, cdc.OpUpdate, key, []byte(`{"id":1,"n":2}`), cdc.NewVersion(3, 400, 0)); out != cdc.OutcomeStale {
		t.Errorf("change below the fill's checkpoint version: %v, want stale", out)
	}
	if out := e.apply(t, cdc.OpUpdate, key, []byte(`{"id":1,"n":3}`), cdc.NewVersion(3, 600, 0)); out != cdc.OutcomeApplied {
		t.Errorf("change above the fill's version: %v, want applied", out)
	}
}

// TestLeaseLosesToAppliedChange is the race leases exist for: the holder
// read the database before a change committed, the change is applied, and
// the holder's older row must not land.
func TestLeaseLosesToAppliedChange(t *testing.T) {
	e := newLeaseEnv(t, "")
	key := e.key("7")
	l := e.acquire(t, key, 2*time.Second)
	if l.State != LeaseGranted || l.Checkpoint != "" {
		t.Fatalf("acquire: %+v, want granted without checkpoint", l)
	}
	if out := e.apply(t, cdc.OpUpdate, key, []byte(`{"id":7,"n":"new"}`), cdc.NewVersion(1, 10, 0)); out != cdc.OutcomeApplied {
		t.Fatalf("apply: %v", out)
	}
	if e.fill(t, Fill{Key: key, Lease: l, Row: []byte(`{"id":7,"n":"old"}`)}) {
		t.Fatal("a fill after an applied change succeeded")
	}
	if rec := e.record(t, key); rec["d"] != `{"id":7,"n":"new"}` || rec["l"] != "" {
		t.Errorf("record %v, want the applied change", rec)
	}
	// Same for a delete: the tombstone stays.
	key2 := e.key("8")
	l = e.acquire(t, key2, 2*time.Second)
	e.apply(t, cdc.OpDelete, key2, nil, cdc.NewVersion(1, 11, 0))
	if e.fill(t, Fill{Key: key2, Lease: l, Row: []byte(`{"id":8}`)}) {
		t.Fatal("a fill after an applied delete succeeded")
	}
	if got := e.acquire(t, key2, time.Second); got.State != LeaseDeleted {
		t.Errorf("acquire on a tombstone: %+v, want deleted", got)
	}
}

func TestLeaseNegativeFillReplacedByInsert(t *testing.T) {
	e := newLeaseEnv(t, "")
	ctx := context.Background()
	key := e.key("9")
	cp := cdc.NewVersion(5, 100, 0)
	e.setCheckpoint(t, cp)
	l := e.acquire(t, key, 2*time.Second)
	if !e.fill(t, Fill{Key: key, Lease: l, Row: nil, TTL: time.Minute}) {
		t.Fatal("negative fill failed")
	}
	rec := e.record(t, key)
	if rec["t"] != "1" || rec["v"] != string(cp) || rec["d"] != "" {
		t.Errorf("negative fill: %v, want {t:1, v:checkpoint}", rec)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("negative tombstone PTTL %v, want <= 1m", ttl)
	}
	// An insert committed after the database read is later in the binlog
	// than the checkpoint: it replaces the tombstone.
	if out := e.apply(t, cdc.OpCreate, key, []byte(`{"id":9}`), cdc.NewVersion(5, 101, 0)); out != cdc.OutcomeApplied {
		t.Fatalf("insert after negative fill: %v", out)
	}
	if rec := e.record(t, key); rec["d"] != `{"id":9}` || rec["t"] != "" {
		t.Errorf("record %v, want the inserted row", rec)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl != -1 {
		t.Errorf("the inserted row kept the negative TTL: PTTL %v", ttl)
	}
}

func TestLeaseOnMarkerKeepsVersionAndTTL(t *testing.T) {
	e := newLeaseEnv(t, "tables:\n  shop.items:\n    mode: invalidate\n")
	ctx := context.Background()
	key := e.key("4")
	marker := cdc.NewVersion(9, 9, 0)
	e.apply(t, cdc.OpUpdate, key, []byte(`{"id":4}`), marker)
	e.setCheckpoint(t, cdc.NewVersion(9, 1, 0)) // the checkpoint lags the marker
	before := e.c.PTTL(ctx, key).Val()
	l := e.acquire(t, key, 2*time.Second)
	if l.State != LeaseGranted {
		t.Fatalf("acquire on a marker: %+v", l)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl < before-time.Minute {
		t.Errorf("the lease shortened the marker's TTL: %v -> %v", before, ttl)
	}
	if !e.fill(t, Fill{Key: key, Lease: l, Row: []byte(`{"id":4,"n":1}`), TTL: time.Hour}) {
		t.Fatal("fill failed")
	}
	if rec := e.record(t, key); rec["v"] != string(marker) {
		t.Errorf("fill version %q, want the marker's larger %q", rec["v"], marker)
	}
	if ttl := e.c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("filled row PTTL %v, want the table ttl", ttl)
	}
}

func TestLeaseExpiresAndReleases(t *testing.T) {
	e := newLeaseEnv(t, "tables:\n  shop.items:\n    mode: invalidate\n")
	ctx := context.Background()
	// On a marker the hash outlives the lease: the deadline in l lets the
	// next reader take over once it passed.
	key := e.key("5")
	e.apply(t, cdc.OpUpdate, key, []byte(`{"id":5}`), cdc.NewVersion(1, 1, 0))
	first := e.acquire(t, key, 30*time.Millisecond)
	if first.State != LeaseGranted {
		t.Fatalf("acquire: %+v", first)
	}
	deadline := time.Now().Add(5 * time.Second)
	var second Lease
	for second = e.acquire(t, key, time.Second); second.State == LeaseBusy; second = e.acquire(t, key, time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("an expired lease was never taken over")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	if second.State != LeaseGranted || second.Token == first.Token {
		t.Fatalf("after expiry: %+v", second)
	}
	if e.fill(t, Fill{Key: key, Lease: first, Row: []byte(`{"id":5,"stale":1}`)}) {
		t.Error("the expired holder filled after another took over")
	}
	// Release gives the lease back and leaves the marker as it was.
	if !e.fill(t, Fill{Key: key, Lease: second, Release: true}) {
		t.Fatal("release failed")
	}
	if rec := e.record(t, key); rec["l"] != "" || rec["v"] == "" {
		t.Errorf("after release: %v, want the bare marker", rec)
	}
	// Released on an absent row, the record disappears.
	key2 := e.key("6")
	l := e.acquire(t, key2, time.Second)
	if !e.fill(t, Fill{Key: key2, Lease: l, Release: true}) {
		t.Fatal("release failed")
	}
	if n := e.c.Exists(ctx, key2).Val(); n != 0 {
		t.Errorf("a released lease on an absent row left the key")
	}
}

func TestLeaseBatchAndScriptReload(t *testing.T) {
	e := newLeaseEnv(t, "")
	ctx := context.Background()
	keys := []string{e.key("a"), e.key("b"), e.key("c")}
	e.apply(t, cdc.OpCreate, keys[1], []byte(`{"id":"b"}`), cdc.NewVersion(1, 1, 0))
	e.apply(t, cdc.OpDelete, keys[2], nil, cdc.NewVersion(1, 2, 0))
	// Without the scripts cached (a restarted server), the batch loads them.
	pc := redis.NewClient(&redis.Options{Addr: testredis.StartPrivate(t).Addr()})
	defer pc.Close()
	if err := pc.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ls, err := AcquireLeases(ctx, pc, e.prefix, e.table, []string{"x"}, time.Second); err != nil || ls[0].State != LeaseGranted {
		t.Fatalf("acquire after SCRIPT FLUSH: %v %v", ls, err)
	}
	ls, err := AcquireLeases(ctx, e.c, e.prefix, e.table, keys, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ls[0].State != LeaseGranted || ls[1].State != LeaseHit || string(ls[1].Row) != `{"id":"b"}` || ls[2].State != LeaseDeleted {
		t.Fatalf("batch: %+v", ls)
	}
	ok, err := FillLeases(ctx, e.c, []Fill{{Key: keys[0], Lease: ls[0], Row: []byte(`{"id":"a"}`)}})
	if err != nil || !ok[0] {
		t.Fatalf("batch fill: %v %v", ok, err)
	}
}

// TestRefreshAbsentRaisesFillFloor: a refresh-mode change that finds no
// record raises the table's fill floor in the same script call (never
// lowering it), and a lease taken afterwards answers the floor when it is
// above the stored checkpoint. A change applied to an existing record, or a
// table in another mode, leaves the floor alone.
func TestRefreshAbsentRaisesFillFloor(t *testing.T) {
	e := newLeaseEnv(t, "tables:\n  shop.items:\n    mode: refresh\n")
	ctx := context.Background()
	floor := func() string { return e.c.HGet(ctx, CheckpointKey(e.prefix), "floor|"+e.table).Val() }
	e.setCheckpoint(t, cdc.NewVersion(3, 1, 0))

	if out := e.apply(t, cdc.OpUpdate, e.key("1"), []byte(`{"id":1}`), cdc.NewVersion(3, 50, 0)); out != cdc.OutcomeIgnored {
		t.Fatalf("refresh change, no record: %v", out)
	}
	if got := floor(); got != string(cdc.NewVersion(3, 50, 0)) {
		t.Fatalf("floor %q after the ignored change", got)
	}
	if out := e.apply(t, cdc.OpDelete, e.key("2"), nil, cdc.NewVersion(3, 40, 0)); out != cdc.OutcomeIgnored {
		t.Fatalf("older refresh delete, no record: %v", out)
	}
	if got := floor(); got != string(cdc.NewVersion(3, 50, 0)) {
		t.Errorf("floor lowered to %q", got)
	}
	l := e.acquire(t, e.key("3"), time.Second)
	if l.State != LeaseGranted || l.Checkpoint != cdc.NewVersion(3, 50, 0) {
		t.Errorf("lease %+v: want the floor, above the stored checkpoint", l)
	}
	// An existing record (the lease's) takes the change: no floor change.
	if out := e.apply(t, cdc.OpUpdate, e.key("3"), []byte(`{"id":3}`), cdc.NewVersion(3, 60, 0)); out != cdc.OutcomeApplied {
		t.Fatalf("refresh change over a lease: %v", out)
	}
	if got := floor(); got != string(cdc.NewVersion(3, 50, 0)) {
		t.Errorf("an applied change moved the floor to %q", got)
	}
}
