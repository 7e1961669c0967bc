package memcachestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/position"
)

// Checkpoints is the checkpoint item's JSON (CheckpointKey): per Debezium
// server name, the highest version processed and its times; per table, the
// server that streams it.
type Checkpoints struct {
	Servers map[string]Checkpoint `json:"servers"`
	Tables  map[string]string     `json:"tables"`
}

// Checkpoint is one Debezium server's stored position.
type Checkpoint struct {
	// Server is the Debezium server name (the key of Checkpoints.Servers,
	// not repeated in the JSON).
	Server string `json:"-"`
	// Version is the highest version processed; every change up to it had
	// committed in the database.
	Version cdc.Version `json:"version"`
	// CommitMs is when MySQL committed that change, AppliedMs when it was
	// applied (Unix ms); ServerID the MySQL server_id that wrote it.
	CommitMs  int64 `json:"commit_ms"`
	AppliedMs int64 `json:"applied_ms"`
	ServerID  int64 `json:"server_id"`
}

// ReadCheckpoints reads the checkpoint item; an absent item is empty.
func ReadCheckpoints(ctx context.Context, c *Client, prefix string) (Checkpoints, error) {
	cps, _, err := readCheckpoints(ctx, c, CheckpointKey(prefix))
	return cps, err
}

// ReadCheckpoint returns the stored checkpoint of the server that streams
// table, or a zero Checkpoint when none is recorded yet.
func ReadCheckpoint(ctx context.Context, c *Client, prefix, table string) (Checkpoint, error) {
	cps, err := ReadCheckpoints(ctx, c, prefix)
	if err != nil {
		return Checkpoint{}, err
	}
	return cps.For(table), nil
}

// For returns the checkpoint of the server that streams table.
func (cps Checkpoints) For(table string) Checkpoint {
	server, ok := cps.Tables[table]
	if !ok {
		return Checkpoint{}
	}
	cp := cps.Servers[server]
	cp.Server = server
	return cp
}

func readCheckpoints(ctx context.Context, c *Client, key string) (Checkpoints, *Op, error) {
	get := &Op{Key: key}
	c.Do(ctx, []*Op{get})
	cps, err := decodeCheckpoints(get)
	return cps, get, err
}

// decodeCheckpoints reads the answer of an mg of the checkpoint item; an
// absent item is empty.
func decodeCheckpoints(get *Op) (Checkpoints, error) {
	cps := Checkpoints{Servers: map[string]Checkpoint{}, Tables: map[string]string{}}
	if get.Err != nil {
		return cps, fmt.Errorf("memcachestore: read checkpoint: %w", get.Err)
	}
	if get.Status == StatusHit {
		if err := json.Unmarshal(get.Value, &cps); err != nil {
			return cps, fmt.Errorf("%w: checkpoint %s: %w", ErrNotRecord, get.Key, err)
		}
		if cps.Servers == nil {
			cps.Servers = map[string]Checkpoint{}
		}
		if cps.Tables == nil {
			cps.Tables = map[string]string{}
		}
	}
	return cps, nil
}

// observe records changes that reached memcached (see
// position.Tracker.Observe), reading first the stored checkpoint of
// servers this process has not seen.
func (s *Store) observe(ctx context.Context, changes []cdc.Change) {
	if len(changes) == 0 {
		return
	}
	if names := s.ck.Unloaded(changes); len(names) > 0 {
		cps, _, err := readCheckpoints(ctx, s.client, s.ckKey)
		for _, name := range names {
			if err != nil {
				s.ck.LoadFailed(name)
				continue
			}
			cp := cps.Servers[name]
			s.ck.Stored(name, cp.Version, cp.ServerID)
		}
	}
	s.ck.Observe(changes, s.opts.Now())
}

// FlushCheckpoint writes now the checkpoint of every change applied so far
// (waiting for a write in progress), so a transport that acknowledges in
// bulk (Kafka's offset commits) can make it durable first; nil when
// written or when there was nothing new.
func (s *Store) FlushCheckpoint(ctx context.Context) error { return s.maybeCheckpoint(ctx, true) }

// maybeCheckpoint merges every server's news into the checkpoint item, if
// the last write is at least CheckpointEvery old (or force): read, raise
// (never lower) each server's position, compare-and-swap, again on a lost
// race.
func (s *Store) maybeCheckpoint(ctx context.Context, force bool) error {
	err := s.ck.Flush(s.opts.Now(), s.opts.CheckpointEvery, force, func(writes []position.Write) []error {
		err := s.writeCheckpoints(ctx, writes)
		errs := make([]error, len(writes))
		for i := range errs {
			errs[i] = err
		}
		return errs
	})
	if err != nil {
		s.checkpointErrors.Add(1)
		s.log.Warn("memcachestore: checkpoint not written; retrying", "err", err)
	}
	return err
}

func (s *Store) writeCheckpoints(ctx context.Context, writes []position.Write) error {
	for attempt := 1; ; attempt++ {
		cps, get, err := readCheckpoints(ctx, s.client, s.ckKey)
		if err != nil {
			return err
		}
		for _, w := range writes {
			if cur := cps.Servers[w.Server]; cur.Version < w.Version {
				cps.Servers[w.Server] = Checkpoint{Version: w.Version, CommitMs: w.CommitMs, AppliedMs: w.AppliedMs, ServerID: w.ServerID}
			}
			for _, t := range w.Tables {
				cps.Tables[t] = w.Server
			}
		}
		val, err := json.Marshal(cps)
		if err != nil {
			return err
		}
		set := &Op{Key: s.ckKey, Set: true, Value: val, CAS: get.Token, Add: get.Status != StatusHit}
		s.client.Do(ctx, []*Op{set})
		switch {
		case set.Err != nil:
			return fmt.Errorf("memcachestore: write checkpoint: %w", set.Err)
		case set.Status == StatusStored:
			return nil
		case attempt >= s.opts.Attempts:
			return fmt.Errorf("memcachestore: write checkpoint: lost %d races in a row", attempt)
		}
		s.races.Add(1)
	}
}

// checkpointTicker writes the checkpoint while no changes arrive, so the
// last position of a burst is not held back until Close.
func (s *Store) checkpointTicker() {
	defer close(s.tickerDone)
	t := time.NewTicker(s.opts.CheckpointEvery)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		select {
		case <-t.C:
			_ = s.maybeCheckpoint(ctx, false) // counted and logged inside
		case <-s.quit:
			return
		}
	}
}
