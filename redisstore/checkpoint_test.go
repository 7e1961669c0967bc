package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func storedVersion(t *testing.T, c *redis.Client, prefix, server string) cdc.Version {
	t.Helper()
	v, err := c.HGet(context.Background(), CheckpointKey(prefix), server).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return cdc.Version(v)
}

func TestCheckpoint(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	// ApplyBatch writes a due checkpoint before it returns, and the ticker
	// (every hour) never fires: the test controls every write.
	s := New(c, testConfig(prefix), Options{CheckpointEvery: time.Hour, Now: clock.Now})
	apply := func(key string, v cdc.Version, commitMs int64) {
		t.Helper()
		res := s.ApplyBatch(ctx, []cdc.Change{{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:" + key,
			Version: v, Row: rowJSON(1, 1), Server: "srv", ServerID: 7, CommitMs: commitMs}})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
	}

	apply("1", ver(5, 100), 1111)
	cp, err := ReadCheckpoint(ctx, c, prefix, "db.rep")
	if err != nil {
		t.Fatal(err)
	}
	want := Checkpoint{Server: "srv", Version: ver(5, 100), CommitMs: 1111, AppliedMs: clock.Now().UnixMilli(), ServerID: 7}
	if cp != want {
		t.Fatalf("first checkpoint %+v, want %+v", cp, want)
	}

	// Within the interval: not written.
	apply("2", ver(5, 200), 2222)
	if got := storedVersion(t, c, prefix, "srv"); got != ver(5, 100) {
		t.Fatalf("written within the interval: %s", got)
	}
	// Due again: the highest version so far, even after an older change.
	clock.Add(time.Hour)
	apply("3", ver(5, 150), 1500)
	if got := storedVersion(t, c, prefix, "srv"); got != ver(5, 200) {
		t.Fatalf("after the interval: %s, want %s", got, ver(5, 200))
	}
	if ms := c.HGet(ctx, CheckpointKey(prefix), "srv|commit_ms").Val(); ms != "2222" {
		t.Fatalf("commit_ms %s, want that of the highest version", ms)
	}

	// Another process stored a higher version: never moved backwards.
	c.HSet(ctx, CheckpointKey(prefix), "srv", string(ver(9, 0)))
	clock.Add(time.Hour)
	apply("4", ver(5, 300), 3333)
	if got := storedVersion(t, c, prefix, "srv"); got != ver(9, 0) {
		t.Fatalf("checkpoint moved backwards to %s", got)
	}

	// Close writes what is pending even within the interval.
	apply("5", ver(10, 0), 4444)
	if got := storedVersion(t, c, prefix, "srv"); got != ver(9, 0) {
		t.Fatalf("written within the interval: %s", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := storedVersion(t, c, prefix, "srv"); got != ver(10, 0) {
		t.Fatalf("after Close: %s, want %s", got, ver(10, 0))
	}
	if got := c.HGet(ctx, CheckpointKey(prefix), "table|db.rep").Val(); got != "srv" {
		t.Fatalf("table|db.rep = %q", got)
	}
}

// TestCheckpointViaApply: the coalescing path writes the checkpoint too,
// and the idle ticker writes the last position of a burst.
func TestCheckpointViaApply(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	s := newTestStore(t, c, testConfig(prefix), Options{CheckpointEvery: 20 * time.Millisecond})
	for i := 1; i <= 20; i++ {
		ch := cdc.Change{Op: cdc.OpDelete, Table: "db.rep", Key: prefix + "db.rep:" + strconv.Itoa(i),
			Version: ver(2, uint64(i)), Server: "srv", ServerID: 1}
		if _, err := s.Apply(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "checkpoint at the last change", func() bool { return storedVersion(t, c, prefix, "srv") == ver(2, 20) })
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func TestRestoreWarning(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	cfg := testConfig(prefix)
	change := func(seq, pos uint64, serverID int64) cdc.Change {
		return cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:" + strconv.FormatUint(seq*1e6+pos, 10),
			Version: ver(seq, pos), Row: rowJSON(1, 1), Server: "srv", ServerID: serverID}
	}

	// A first process reaches binlog file 5 on server_id 1.
	first := New(c, cfg, Options{})
	if res := first.ApplyBatch(ctx, []cdc.Change{change(5, 1000, 1)}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A new process (it must read the stored checkpoint) sees older files.
	var logs lockedBuffer
	clock := &fakeClock{now: time.Now()}
	s := newTestStore(t, c, cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: clock.Now})
	steps := []struct {
		ch   cdc.Change
		want int64
	}{
		{change(3, 10, 1), 0}, // same server: an old redelivery, not a restore
		{change(5, 10, 2), 0}, // same file, lower position: not far below
		{change(3, 10, 0), 0}, // server_id unknown
		{change(3, 20, 2), 1}, // older file from another server
		{change(4, 20, 2), 2}, // counted again, logged once
	}
	for i, st := range steps {
		if _, err := s.Apply(ctx, st.ch); err != nil {
			t.Fatal(err)
		}
		if got := s.Warnings(); got != st.want {
			t.Fatalf("step %d: warnings %d, want %d", i, got, st.want)
		}
	}
	if n := logs.count("database restored"); n != 1 {
		t.Fatalf("%d warning lines, want 1 (rate-limited):\n%s", n, logs.b.String())
	}
	clock.Add(time.Minute)
	if _, err := s.Apply(ctx, change(2, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if n := logs.count("database restored"); n != 2 || s.Stats().RestoreWarnings != 3 {
		t.Fatalf("after a minute: %d lines, %d warnings; want 2 and 3", n, s.Stats().RestoreWarnings)
	}
}
