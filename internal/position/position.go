// Package position keeps, in memory, each Debezium server's position as one
// process of a store sees it: the highest version processed here (to be
// written as the cache's checkpoint) and the highest known at all (stored
// or processed, to spot a restored database). It does no I/O; each store
// (redisstore, memcachestore) reads and writes its checkpoint in its own
// format through it, so the rules are the same on every cache.
package position

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// warnEvery rate-limits the restored-database warning per server.
const warnEvery = time.Minute

// Write is one server's news for the stored checkpoint.
type Write struct {
	// Server is the Debezium server name.
	Server string
	// Version is the highest version processed here; CommitMs is when MySQL
	// committed it, AppliedMs when it was applied (Unix ms), ServerID the
	// MySQL server_id that wrote it.
	Version             cdc.Version
	CommitMs, AppliedMs int64
	ServerID            int64
	// Tables are tables newly seen streamed by this server.
	Tables []string
}

// Tracker tracks the positions of every server seen. It is safe for
// concurrent use.
type Tracker struct {
	name string // the store's name, in log messages
	log  *slog.Logger

	warnings atomic.Int64

	// writeMu serialises Flush; held across the store's write.
	writeMu sync.Mutex

	// mu guards everything below.
	mu        sync.Mutex
	servers   map[string]*server
	tableOf   map[string]string // table -> server, as recorded (or pending) by this process
	lastWrite time.Time         // last write attempt
}

// server is one server's position; guarded by Tracker.mu.
type server struct {
	// loaded is set once the stored checkpoint was read (or is being read).
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

// New returns an empty Tracker; name prefixes its log messages.
func New(name string, log *slog.Logger) *Tracker {
	return &Tracker{name: name, log: log, servers: map[string]*server{}, tableOf: map[string]string{}}
}

// Warnings counts changes far below the known position from another MySQL
// server_id: the database was restored or Debezium repointed.
func (t *Tracker) Warnings() int64 { return t.warnings.Load() }

func (t *Tracker) server(name string) *server {
	p := t.servers[name]
	if p == nil {
		p = &server{}
		t.servers[name] = p
	}
	return p
}

// Unloaded returns the servers of changes whose stored checkpoint was
// never read, and marks them as being read: the caller reads each and
// reports with Stored or LoadFailed. A fresh process needs the stored
// position to tell a restored database too.
func (t *Tracker) Unloaded(changes []cdc.Change) []string {
	var names []string
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range changes {
		name := changes[i].Server
		if name == "" {
			continue
		}
		if p := t.server(name); !p.loaded {
			p.loaded = true
			names = append(names, name)
		}
	}
	return names
}

// Stored reports a server's stored checkpoint (empty version: none).
func (t *Tracker) Stored(name string, v cdc.Version, serverID int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.server(name); v > p.best {
		p.best, p.bestServerID = v, serverID
	}
}

// LoadFailed makes the next change of the server read its checkpoint again.
func (t *Tracker) LoadFailed(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.server(name).loaded = false
}

// Observe records changes that reached the cache (applied, deleted, stale,
// ignored for want of a record, truncate started): each proves the database
// had committed its position, which is what the checkpoint means to the
// read path's fill and to lag monitoring. Stale changes count too: they
// were processed, and their version is at most one already stored. It
// also counts, and logs at most once a minute per server, changes that
// look like a restored database.
func (t *Tracker) Observe(changes []cdc.Change, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range changes {
		ch := &changes[i]
		if ch.Server == "" || ch.Version == "" {
			continue
		}
		p := t.server(ch.Server)
		if p.best != "" && ch.Version[:10] < p.best[:10] &&
			ch.ServerID != 0 && p.bestServerID != 0 && ch.ServerID != p.bestServerID {
			n := t.warnings.Add(1)
			if now.Sub(p.lastWarn) >= warnEvery {
				p.lastWarn = now
				t.log.Warn(t.name+": change far below the checkpoint from another MySQL server: database restored or Debezium repointed? Use a new cache prefix and a fresh snapshot",
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
		if t.tableOf[ch.Table] != ch.Server {
			t.tableOf[ch.Table] = ch.Server
			p.newTables = append(p.newTables, ch.Table)
			p.dirty = true
		}
	}
}

// Flush hands every server's news to write if the last attempt is at least
// every old (or force), and keeps for the next Flush the news whose write
// failed (write returns one error per Write, nil when written). Without
// force it gives way to a Flush in progress. It returns the first error.
func (t *Tracker) Flush(now time.Time, every time.Duration, force bool, write func([]Write) []error) error {
	if force {
		t.writeMu.Lock()
	} else if !t.writeMu.TryLock() {
		return nil
	}
	defer t.writeMu.Unlock()
	var writes []Write
	t.mu.Lock()
	if !force && !t.lastWrite.IsZero() && now.Sub(t.lastWrite) < every {
		t.mu.Unlock()
		return nil
	}
	for name, p := range t.servers {
		if !p.dirty || p.max == "" {
			continue
		}
		writes = append(writes, Write{Server: name, Version: p.max, CommitMs: p.commitMs, AppliedMs: p.appliedMs,
			ServerID: p.serverID, Tables: p.newTables})
		p.dirty, p.newTables = false, nil
	}
	if len(writes) > 0 {
		t.lastWrite = now
	}
	t.mu.Unlock()
	if len(writes) == 0 {
		return nil
	}
	errs := write(writes)
	var first error
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, err := range errs {
		if err == nil {
			continue
		}
		p := t.servers[writes[i].Server]
		p.dirty = true
		p.newTables = append(p.newTables, writes[i].Tables...)
		if first == nil {
			first = err
		}
	}
	return first
}
