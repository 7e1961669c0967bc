package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
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

// restoreWarnEvery rate-limits the restored-database warning per server.
const restoreWarnEvery = time.Minute

// checkpoints tracks, per Debezium server, the highest version this
// process has processed and the stored checkpoint it started from.
type checkpoints struct {
	key string

	// writeMu serialises checkpoint writes; held across the round trip.
	writeMu sync.Mutex

	// mu guards everything below.
	mu        sync.Mutex
	servers   map[string]*serverPos
	tableOf   map[string]string // table -> server, as recorded (or pending) by this process
	lastWrite time.Time         // last checkpoint write attempt
}

// serverPos is one server's position; guarded by checkpoints.mu.
type serverPos struct {
	// loaded is set once the stored checkpoint was read (for restore warnings).
	loaded bool
	// best is the highest version known: stored or processed here.
	best         cdc.Version
	bestServerID int64
	// max is the highest version processed here, with its times.
	max       cdc.Version
	serverID  int64
	commitMs  int64
	appliedMs int64
	// dirty: max or newTables not yet written.
	dirty     bool
	newTables []string
	lastWarn  time.Time
}

func newCheckpoints(key string) checkpoints {
	return checkpoints{key: key, servers: map[string]*serverPos{}, tableOf: map[string]string{}}
}

// observe records changes that reached Redis (applied, deleted, stale,
// ignored for want of a record, truncate started): each proves the
// database had committed its position, which is what the checkpoint means
// to the read path's fill and to lag monitoring. Stale changes count too:
// they were processed, and their version is at most one already stored.
// It also raises the restored-database warning.
func (s *Store) observe(ctx context.Context, changes []cdc.Change) {
	if len(changes) == 0 {
		return
	}
	s.loadStored(ctx, changes)
	now := s.opts.Now()
	ck := &s.ck
	ck.mu.Lock()
	defer ck.mu.Unlock()
	for i := range changes {
		ch := &changes[i]
		if ch.Server == "" || ch.Version == "" {
			continue
		}
		p := ck.server(ch.Server)
		if p.best != "" && ch.Version[:10] < p.best[:10] &&
			ch.ServerID != 0 && p.bestServerID != 0 && ch.ServerID != p.bestServerID {
			n := s.restoreWarnings.Add(1)
			if now.Sub(p.lastWarn) >= restoreWarnEvery {
				p.lastWarn = now
				s.log.Warn("redisstore: change far below the checkpoint from another MySQL server: database restored or Debezium repointed? Use a new cache prefix and a fresh snapshot",
					"server", ch.Server, "table", ch.Table, "version", string(ch.Version), "server_id", ch.ServerID,
					"checkpoint", string(p.best), "checkpoint_server_id", p.bestServerID, "warnings", n)
			}
		}
		if ch.Version > p.max {
			p.max, p.serverID, p.commitMs, p.appliedMs = ch.Version, ch.ServerID, ch.CommitMs, now.UnixMilli()
			p.dirty = true
		}
		if ch.Version > p.best {
			p.best, p.bestServerID = ch.Version, ch.ServerID
		}
		if ck.tableOf[ch.Table] != ch.Server {
			ck.tableOf[ch.Table] = ch.Server
			p.newTables = append(p.newTables, ch.Table)
			p.dirty = true
		}
	}
}

// server returns a server's position, creating it; ck.mu is held.
func (ck *checkpoints) server(name string) *serverPos {
	p := ck.servers[name]
	if p == nil {
		p = &serverPos{}
		ck.servers[name] = p
	}
	return p
}

// loadStored reads the stored checkpoint of servers seen for the first
// time, once per process, so a fresh process can tell a restored database
// too. A failed read is retried with the next change.
func (s *Store) loadStored(ctx context.Context, changes []cdc.Change) {
	ck := &s.ck
	var names []string
	ck.mu.Lock()
	for i := range changes {
		name := changes[i].Server
		if name == "" {
			continue
		}
		if p := ck.server(name); !p.loaded {
			p.loaded = true // one reader at a time; reset on failure
			names = append(names, name)
		}
	}
	ck.mu.Unlock()
	if len(names) == 0 {
		return
	}
	pipe := s.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.HMGet(ctx, ck.key, name, name+"|server_id")
	}
	_, _ = pipe.Exec(ctx)
	ck.mu.Lock()
	defer ck.mu.Unlock()
	for i, name := range names {
		p := ck.servers[name]
		vals, err := cmds[i].Result()
		if err != nil {
			p.loaded = false
			continue
		}
		if v, ok := vals[0].(string); ok && cdc.Version(v) > p.best {
			p.best, p.bestServerID = cdc.Version(v), hashInt(vals[1])
		}
	}
}

// maybeCheckpoint writes the checkpoint of every server with news, if the
// last write is at least CheckpointEvery old (or force). Without force it
// gives way to a write already in progress.
func (s *Store) maybeCheckpoint(ctx context.Context, force bool) error {
	ck := &s.ck
	if force {
		ck.writeMu.Lock()
	} else if !ck.writeMu.TryLock() {
		return nil
	}
	defer ck.writeMu.Unlock()

	type write struct {
		server string
		max    cdc.Version
		tables []string
		args   []any
	}
	var writes []write
	ck.mu.Lock()
	now := s.opts.Now()
	if !force && !ck.lastWrite.IsZero() && now.Sub(ck.lastWrite) < s.opts.CheckpointEvery {
		ck.mu.Unlock()
		return nil
	}
	for name, p := range ck.servers {
		if !p.dirty || p.max == "" {
			continue
		}
		args := []any{name, string(p.max), p.commitMs, p.appliedMs, p.serverID}
		for _, t := range p.newTables {
			args = append(args, t)
		}
		writes = append(writes, write{server: name, max: p.max, tables: p.newTables, args: args})
		p.dirty, p.newTables = false, nil
	}
	if len(writes) > 0 {
		ck.lastWrite = now
	}
	ck.mu.Unlock()
	if len(writes) == 0 {
		return nil
	}

	cmds := evalAll(ctx, s.client, checkpointScript, len(writes), func(i int) ([]string, []any) {
		return []string{ck.key}, writes[i].args
	})
	var firstErr error
	ck.mu.Lock()
	defer ck.mu.Unlock()
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			// Keep the news for the next write.
			p := ck.servers[writes[i].server]
			p.dirty = true
			p.newTables = append(p.newTables, writes[i].tables...)
			if firstErr == nil {
				firstErr = fmt.Errorf("redisstore: write checkpoint: %w", err)
			}
		}
	}
	if firstErr != nil {
		s.checkpointErrors.Add(1)
		s.log.Warn("redisstore: checkpoint not written; retrying", "err", firstErr)
	}
	return firstErr
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
