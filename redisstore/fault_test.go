package redisstore

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

func TestNoScript(t *testing.T) {
	srv := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	cfg := testConfig("")
	s := newTestStore(t, c, cfg, Options{})
	up := func(key string, pos uint64) cdc.Change {
		return cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: "db.rep:" + key, Version: ver(1, pos), Row: rowJSON(1, int(pos)), Server: "srv"}
	}

	// The scripts were never loaded on this server: the first use loads them.
	if out, err := s.Apply(ctx, up("1", 1)); err != nil || out != cdc.OutcomeApplied {
		t.Fatalf("first apply: %v %v", out, err)
	}
	for round := 0; round < 2; round++ {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if out, err := s.Apply(ctx, up("1", uint64(10+round))); err != nil || out != cdc.OutcomeApplied {
			t.Fatalf("apply after SCRIPT FLUSH: %v %v", out, err)
		}
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		res := s.ApplyBatch(ctx, []cdc.Change{up("2", uint64(20+round)), up("3"+strconv.Itoa(round), 1), up("2", 1)})
		for i, want := range []cdc.Outcome{cdc.OutcomeApplied, cdc.OutcomeApplied, cdc.OutcomeStale} {
			if res[i].Err != nil || res[i].Outcome != want {
				t.Fatalf("batch after SCRIPT FLUSH [%d]: %+v, want %v", i, res[i], want)
			}
		}
	}
	// Truncate and checkpoint scripts too.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, cdc.Change{Op: cdc.OpTruncate, Table: "db.rep", Version: ver(1, 15), Server: "srv"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, "db.rep:1", "db.rep:30", "db.rep:31").Val(); n != 0 {
		t.Fatalf("truncate after SCRIPT FLUSH left %d old records", n)
	}
	if n := c.Exists(ctx, "db.rep:2").Val(); n != 1 {
		t.Fatal("truncate removed a newer record")
	}
	if v := c.HGet(ctx, CheckpointKey(""), "srv").Val(); v != string(ver(1, 21)) {
		t.Fatalf("checkpoint %q after SCRIPT FLUSH", v)
	}
}

func TestRedisDown(t *testing.T) {
	srv := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	s := newTestStore(t, c, testConfig(""), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := cdc.Change{Op: cdc.OpCreate, Table: "db.rep", Key: "db.rep:1", Version: ver(1, 1), Row: rowJSON(1, 1)}
	if _, err := s.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	ch.Version, ch.Row = ver(1, 2), rowJSON(1, 2)
	start := time.Now()
	_, err := s.Apply(ctx, ch)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cdc.ErrInvalid) {
		t.Fatalf("Apply with Redis down: %v, want a transient error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Apply with Redis down took %v", took)
	}
	res := s.ApplyBatch(ctx, []cdc.Change{ch, ch})
	if res[0].Err == nil || res[1].Err == nil {
		t.Fatalf("ApplyBatch with Redis down: %+v", res)
	}

	srv.Restart()
	var out cdc.Outcome
	waitFor(t, "apply after restart", func() bool {
		out, err = s.Apply(ctx, ch)
		return err == nil
	})
	if out != cdc.OutcomeApplied {
		t.Fatalf("after restart: %v", out)
	}
	if got := c.HGet(ctx, "db.rep:1", "d").Val(); got != string(rowJSON(1, 2)) {
		t.Fatalf("after restart the record holds %q", got)
	}
}
