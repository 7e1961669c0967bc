package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/position"
)

// CheckpointKey is the checkpoint hash of a key prefix (namespace). Its
// fields, per Debezium server name S: S the highest version processed,
// "S|commit_ms" that change's MySQL commit time, "S|applied_ms" when it was
// applied, "S|server_id" the MySQL server_id that wrote it (all Unix ms);
// and "table|<db.table>" naming the server that streams the table.
func CheckpointKey(prefix string) string { return prefix + "__cdc:checkpoint" }

// Checkpoint is one Debezium server's stored position.
type Checkpoint struct {
	// Server is the Debezium server name; empty when nothing is recorded.
	Server string
	// Version is the highest version processed; every change up to it had
	// committed in the database.
	Version cdc.Version
	// CommitMs is when MySQL committed that change, Unix ms.
	CommitMs int64
	// AppliedMs is when it was applied, Unix ms.
	AppliedMs int64
	// ServerID is the MySQL server_id that wrote it.
	ServerID int64
}

// ReadCheckpoint returns the stored checkpoint of the server that streams
// table, or a zero Checkpoint when none is recorded yet.
func ReadCheckpoint(ctx context.Context, c redis.Cmdable, prefix, table string) (Checkpoint, error) {
	key := CheckpointKey(prefix)
	server, err := c.HGet(ctx, key, "table|"+table).Result()
	if err == redis.Nil {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("redisstore: read checkpoint: %w", err)
	}
	vals, err := c.HMGet(ctx, key, server, server+"|commit_ms", server+"|applied_ms", server+"|server_id").Result()
	if err != nil {
		return Checkpoint{}, fmt.Errorf("redisstore: read checkpoint: %w", err)
	}
	cp := Checkpoint{Server: server}
	if v, ok := vals[0].(string); ok {
		cp.Version = cdc.Version(v)
	}
	cp.CommitMs, cp.AppliedMs, cp.ServerID = hashInt(vals[1]), hashInt(vals[2]), hashInt(vals[3])
	return cp, nil
}

// hashInt reads an integer field from HMGET's answer; absent or malformed
// reads as 0 (unknown).
func hashInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// observe records changes that reached Redis (see position.Tracker.Observe),
// reading first the stored checkpoint of servers this process has not seen.
func (s *Store) observe(ctx context.Context, changes []cdc.Change) {
	if len(changes) == 0 {
		return
	}
	s.loadStored(ctx, changes)
	s.ck.Observe(changes, s.opts.Now())
}

// loadStored reads the stored checkpoint of servers seen for the first
// time, once per process. A failed read is retried with the next change.
func (s *Store) loadStored(ctx context.Context, changes []cdc.Change) {
	names := s.ck.Unloaded(changes)
	if len(names) == 0 {
		return
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.HMGet(ctx, s.ckKey, name, name+"|server_id")
	}
	_, _ = pipe.Exec(ctx)
	for i, name := range names {
		vals, err := cmds[i].Result()
		if err != nil {
			s.ck.LoadFailed(name)
			continue
		}
		v, _ := vals[0].(string)
		s.ck.Stored(name, cdc.Version(v), hashInt(vals[1]))
	}
}

// maybeCheckpoint writes the checkpoint of every server with news, if the
// last write is at least CheckpointEvery old (or force). Without force it
// gives way to a write already in progress.
func (s *Store) maybeCheckpoint(ctx context.Context, force bool) error {
	err := s.ck.Flush(s.opts.Now(), s.opts.CheckpointEvery, force, func(writes []position.Write) []error {
		cmds := evalAll(ctx, s.client, checkpointScript, len(writes), func(i int) ([]string, []any) {
			w := &writes[i]
			args := []any{w.Server, string(w.Version), w.CommitMs, w.AppliedMs, w.ServerID}
			for _, t := range w.Tables {
				args = append(args, t)
			}
			return []string{s.ckKey}, args
		})
		errs := make([]error, len(cmds))
		for i, cmd := range cmds {
			errs[i] = cmd.Err()
		}
		return errs
	})
	if err != nil {
		err = fmt.Errorf("redisstore: write checkpoint: %w", err)
		s.checkpointErrors.Add(1)
		s.log.Warn("redisstore: checkpoint not written; retrying", "err", err)
	}
	return err
}

// checkpointTicker writes the checkpoint while no changes arrive, so the
// last position of a burst is not held back until Close.
func (s *Store) checkpointTicker() {
	defer close(s.tickerDone)
	t := time.NewTicker(s.opts.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = s.maybeCheckpoint(s.bg, false) // counted and logged inside
		case <-s.quit:
			return
		}
	}
}
