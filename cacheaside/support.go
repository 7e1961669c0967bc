package cacheaside

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// lookup returns the table's settings and whether the cache can hold its rows:
// with only_listed, the change stream ignores unlisted tables.
func (r *Reader) lookup(table string) (*cdc.Table, bool) {
	t, listed := r.cfg.Lookup(table)
	return t, listed || !r.cfg.OnlyListed
}

// key builds the row's key (the Redis form; a memcached adapter maps it)
// from the caller's key values.
func (r *Reader) key(table string, pk []any) (string, error) {
	if len(pk) == 0 {
		return "", fmt.Errorf("cacheaside: %s: no key values", table)
	}
	parts := make([][]byte, len(pk))
	for i, v := range pk {
		p, err := cdc.KeyPart(v)
		if err != nil {
			return "", fmt.Errorf("cacheaside: %s: %w", table, err)
		}
		parts[i] = p
	}
	key, err := cdc.AppendKey(nil, r.cfg.Prefix, table, parts...)
	if err != nil {
		return "", fmt.Errorf("cacheaside: %w", err)
	}
	return string(key), nil
}

// cacheUp reports whether reads should ask the cache (no recent failure).
func (r *Reader) cacheUp() bool { return time.Now().UnixNano() >= r.cacheDownUntil.Load() }

// cacheError handles a failed cache read or lease call. An error about one
// key (the cache's keyOnly) is that key's miss, counted in KeyErrors, and it
// reports true: the caller reads the key from the database and does not
// fill it. Any other error means the cache is down: cacheFailed.
func (r *Reader) cacheError(err error) (keyOnly bool) {
	if r.cache.keyOnly(err) {
		r.keyFailed()
		return true
	}
	r.cacheFailed()
	return false
}

// keyFailed counts a key the cache answered with an error of its own.
func (r *Reader) keyFailed() { r.m.keyErrors.Inc() }

// cacheFailed starts a backoff: for RedisBackoff, reads go to the database
// without trying the cache.
func (r *Reader) cacheFailed() {
	r.m.redisDown.Inc()
	r.cacheDownUntil.Store(time.Now().Add(r.opts.RedisBackoff).UnixNano())
}

// dbTurn waits for one of MaxDBConcurrency database slots. Leases and the
// per-key flight bound reads of one key, not of many: a cold cache (or
// Redis down) turns every read into a query, and those wait here.
func (r *Reader) dbTurn(ctx context.Context) (release func(), err error) {
	if !r.cacheUp() {
		r.m.dbFallbacks.Inc()
	}
	select {
	case r.dbSlot <- struct{}{}:
		return func() { <-r.dbSlot }, nil
	default:
	}
	r.m.dbSlotWaits.Inc()
	select {
	case r.dbSlot <- struct{}{}:
		return func() { <-r.dbSlot }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cacheaside: waiting for a database slot (MaxDBConcurrency): %w", ctx.Err())
	}
}

// counters are the Reader's metrics; each is updated without locks.
type counters struct {
	hits, tombstoneHits, lateHits, misses            metrics.Counter
	fills, fillConflicts, dbQueries, errors          metrics.Counter
	redisDown, dbFallbacks, leaseWaits, leaseTimeout metrics.Counter
	keyErrors, dbSlotWaits                           metrics.Counter
	hitLatency, missLatency, batchLatency            metrics.Histogram
}

// Stats are a Reader's counters since New (cumulative) and latency
// histograms; subtract two snapshots for an interval.
type Stats struct {
	// Hits counts keys answered by a row on the first Redis read.
	Hits uint64
	// TombstoneHits counts keys answered "not found" by a tombstone on the
	// first Redis read, without the database.
	TombstoneHits uint64
	// Misses counts keys the first Redis read did not answer (or that
	// skipped Redis because it was down).
	Misses uint64
	// LateHits counts misses answered from Redis after all: filled by
	// another reader while this one took the lease or waited for it.
	LateHits uint64
	// Fills counts rows and negative tombstones written under a lease.
	Fills uint64
	// FillConflicts counts fills dropped because a change (or a later
	// lease) replaced the lease: the caller got the database row it read.
	FillConflicts uint64
	// DBQueries counts queries sent to the database for rows.
	DBQueries uint64
	// Errors counts calls that returned an error other than ErrNotFound,
	// and fills that failed.
	Errors uint64
	// RedisDown counts cache failures (Redis, or memcached with
	// NewMemcached) that sent reads to the database.
	RedisDown uint64
	// KeyErrors counts cache errors about one key (a Redis key of another
	// type, a memcached item that is not a record, a memcached SERVER_ERROR
	// such as an item too large): that key was read from the database, not
	// filled, and Redis kept serving every other key.
	KeyErrors uint64
	// DBFallbacks counts database reads made while Redis was considered
	// down.
	DBFallbacks uint64
	// DBSlotWaits counts database reads that found MaxDBConcurrency reads
	// in flight and queued for a slot.
	DBSlotWaits uint64
	// LeaseWaits counts misses that found another reader's lease and
	// waited; LeaseWaitTimeouts those that then read the database.
	LeaseWaits, LeaseWaitTimeouts uint64
	// HitLatency is Get's latency when Redis answered at the first read,
	// MissLatency when it did not, BatchLatency GetMany's.
	HitLatency, MissLatency, BatchLatency metrics.HistogramSnapshot
}

// Stats returns the Reader's counters.
func (r *Reader) Stats() Stats {
	m := &r.m
	return Stats{
		Hits: m.hits.Load(), TombstoneHits: m.tombstoneHits.Load(), Misses: m.misses.Load(),
		LateHits: m.lateHits.Load(), Fills: m.fills.Load(), FillConflicts: m.fillConflicts.Load(),
		DBQueries: m.dbQueries.Load(), Errors: m.errors.Load(), RedisDown: m.redisDown.Load(), KeyErrors: m.keyErrors.Load(),
		DBFallbacks: m.dbFallbacks.Load(), DBSlotWaits: m.dbSlotWaits.Load(), LeaseWaits: m.leaseWaits.Load(), LeaseWaitTimeouts: m.leaseTimeout.Load(),
		HitLatency: m.hitLatency.Snapshot(), MissLatency: m.missLatency.Snapshot(), BatchLatency: m.batchLatency.Snapshot(),
	}
}
