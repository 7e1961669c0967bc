package cacheaside

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
)

// NewMemcached returns a Reader over memcached, the record format of
// memcachestore (design section 2, "Memcached record"), with the same
// answers, fills, leases and statistics as New gives over Redis. mc is the
// same client (the same node list, in the same order: consistent hashing
// places keys by it) the change stream's memcached store writes through.
// Options.RedisBackoff and Stats.RedisDown apply to memcached: a node that
// does not answer sends reads to the database, without trying memcached
// again for the backoff. An error reply about one key (SERVER_ERROR, such as
// "out of memory storing object" when a -M memcached is full) or an item
// that is not a record is that key's miss, counted in Stats.KeyErrors.
func NewMemcached(mc *memcachestore.Client, db *sql.DB, cfg *cdc.Config, opts Options) *Reader {
	return newReader(memcacheCache{mc: mc, prefix: cfg.Prefix}, db, cfg, opts)
}

// memcacheCache is the memcached record format (memcachestore) under a
// Reader.
type memcacheCache struct {
	mc     *memcachestore.Client
	prefix string
}

func (c memcacheCache) lookup(ctx context.Context, table string, keys []string) ([]entry, error) {
	found := memcachestore.Read(ctx, c.mc, c.prefix, table, keys)
	out := make([]entry, len(found))
	for i, f := range found {
		switch {
		case f.Err != nil && !c.keyOnly(f.Err):
			return nil, f.Err
		case f.Err != nil:
			out[i].err = f.Err
		case f.Record.Kind == memcachestore.KindRow:
			out[i].row = f.Record.Row
		case f.Record.Kind == memcachestore.KindTombstone:
			out[i].deleted = true
		}
	}
	return out, nil
}

func (c memcacheCache) acquire(ctx context.Context, table string, keys []string, ttl time.Duration) ([]lease, error) {
	ls := memcachestore.AcquireLeases(ctx, c.mc, c.prefix, table, keys, ttl)
	out := make([]lease, len(ls))
	for i, l := range ls {
		switch l.State {
		case memcachestore.LeaseGranted:
			out[i] = lease{state: leaseGranted, held: l}
		case memcachestore.LeaseHit:
			out[i] = lease{state: leaseHit, row: l.Row}
		case memcachestore.LeaseDeleted:
			out[i] = lease{state: leaseDeleted}
		case memcachestore.LeaseBusy:
			out[i] = lease{state: leaseBusy}
		case memcachestore.LeaseSkipped:
			out[i] = lease{state: leaseSkipped}
		default:
			if !c.keyOnly(l.Err) {
				return nil, l.Err
			}
			out[i] = lease{state: leaseFailed, err: l.Err}
		}
	}
	return out, nil
}

func (c memcacheCache) fill(ctx context.Context, fills []fill) ([]bool, error) {
	fs := make([]memcachestore.Fill, len(fills))
	for i, f := range fills {
		fs[i] = memcachestore.Fill{Lease: f.lease.held.(memcachestore.Lease), Row: f.row, Release: f.release, TTL: f.ttl}
	}
	return memcachestore.FillLeases(ctx, c.mc, fs)
}

func (memcacheCache) keyOnly(err error) bool {
	return errors.Is(err, memcachestore.ErrReply) || errors.Is(err, memcachestore.ErrNotRecord)
}
