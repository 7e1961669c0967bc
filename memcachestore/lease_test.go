package memcachestore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// A lease over a marker keeps the marker's version and TTL, and giving it
// back restores the marker; a bare lease given back leaves nothing. An
// expired lease is taken over; an unexpired one is busy; a change applied
// over a lease takes it, so its fill loses.
func TestLeaseOnMarkerReleaseAndTakeover(t *testing.T) {
	b := privateBackend(t)
	ctx := context.Background()
	const table = "db.t"
	v := cdc.NewVersion(1, 5, 0)
	marker, bare := "test:db.t:1", "test:db.t:2"
	b.Seed(t, marker, map[string]string{"v": string(v)}, time.Hour)

	ls := AcquireLeases(ctx, b.c, b.prefix, table, []string{marker, bare}, 10*time.Second)
	for i, l := range ls {
		if l.State != LeaseGranted || l.Err != nil {
			t.Fatalf("lease %d: %+v", i, l)
		}
	}
	if rec, ttl := b.Get(t, marker); rec["v"] != string(v) || rec["l"] != ls[0].Token || ttl < 59*time.Minute {
		t.Errorf("lease on the marker %v ttl %v: want its version and TTL kept", rec, ttl)
	}
	if rec, ttl := b.Get(t, bare); rec["l"] != ls[1].Token || rec["v"] != "" || ttl <= 0 || ttl > 10*time.Second {
		t.Errorf("bare lease %v ttl %v", rec, ttl)
	}
	if again := AcquireLeases(ctx, b.c, b.prefix, table, []string{marker}, time.Second); again[0].State != LeaseBusy {
		t.Errorf("second lease: %+v, want busy", again[0])
	}
	ok, err := FillLeases(ctx, b.c, []Fill{{Lease: ls[0], Release: true}, {Lease: ls[1], Release: true}})
	if err != nil || !ok[0] || !ok[1] {
		t.Fatalf("release: %v %v", ok, err)
	}
	if rec, ttl := b.Get(t, marker); len(rec) != 1 || rec["v"] != string(v) || ttl < 59*time.Minute {
		t.Errorf("released marker %v ttl %v", rec, ttl)
	}
	if rec, _ := b.Get(t, bare); rec != nil {
		t.Errorf("released bare lease left %v", rec)
	}

	// An expired lease (its deadline in the token has passed) is taken over.
	expired := Record{Kind: KindLease, Lease: "dead." + strconv.FormatInt(time.Now().Add(-time.Second).UnixMilli(), 10)}
	set := &Op{Key: Key(b.prefix, bare), Set: true, Value: expired.Append(nil), Exptime: 60}
	b.c.Do(ctx, []*Op{set})
	l := AcquireLeases(ctx, b.c, b.prefix, table, []string{bare}, 10*time.Second)[0]
	if l.State != LeaseGranted || strings.HasPrefix(l.Token, "dead.") {
		t.Fatalf("takeover: %+v", l)
	}
	// A change takes the lease: the fill loses, the change stays.
	s := newTestStore(t, b.c, cdc.DefaultConfig(), Options{})
	if out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpUpdate, Table: table, Key: bare, Version: cdc.NewVersion(1, 9, 0), Row: []byte(`{"new":1}`), Server: "srv"}); err != nil || out != cdc.OutcomeApplied {
		t.Fatalf("apply over the lease: %v %v", out, err)
	}
	ok, err = FillLeases(ctx, b.c, []Fill{{Lease: l, Row: []byte(`{"old":1}`)}})
	if err != nil || ok[0] {
		t.Fatalf("fill after a change: %v %v, want lost", ok, err)
	}
	if rec, _ := b.Get(t, bare); rec["d"] != `{"new":1}` {
		t.Errorf("record %v: the fill overwrote the change", rec)
	}
}

// A refresh-mode change that finds no record leaves nothing but the table's
// fill floor, raised to its version and never lowered, and a lease then
// carries at least the floor.
func TestRefreshIgnoredRaisesFillFloor(t *testing.T) {
	b := privateBackend(t)
	ctx := context.Background()
	cfg, err := cdc.ParseConfig([]byte("prefix: \"test:\"\ntables:\n  db.t:\n    mode: refresh\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, b.c, cfg, Options{})
	floor := func() string {
		get := &Op{Key: FloorKey("test:", "db.t")}
		b.c.Do(ctx, []*Op{get})
		if get.Err != nil {
			t.Fatal(get.Err)
		}
		return string(get.Value)
	}
	v5, v3 := cdc.NewVersion(2, 5, 0), cdc.NewVersion(2, 3, 0)
	for _, v := range []cdc.Version{v5, v3} {
		out, err := s.Apply(ctx, cdc.Change{Op: cdc.OpUpdate, Table: "db.t", Key: "test:db.t:1", Version: v, Row: []byte(`{}`), Server: "srv"})
		if err != nil || out != cdc.OutcomeIgnored {
			t.Fatalf("apply %s: %v %v", v, out, err)
		}
		if got := floor(); got != string(v5) {
			t.Fatalf("floor %q after %s, want %s", got, v, v5)
		}
	}
	l := AcquireLeases(ctx, b.c, "test:", "db.t", []string{"test:db.t:2"}, time.Second)[0]
	if l.State != LeaseGranted || l.Checkpoint < v5 {
		t.Errorf("lease %+v: want its version at least the floor %s", l, v5)
	}
}
