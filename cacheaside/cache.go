package cacheaside

import (
	"context"
	"time"
)

// cache is the store a Reader reads and fills: Redis (redisCache, New) or
// memcached (memcacheCache, NewMemcached). Each call covers many keys in one
// round trip (per node). It is not exported: the lease protocol behind
// acquire and fill is half of a contract whose other half is the change
// stream's apply (every applied change takes the lease), so only the stores
// of this module can implement it. Keys are the records' Redis-form keys
// (cdc.AppendKey); an adapter maps them to its store's.
type cache interface {
	// lookup reads the records of keys of table. An error means the cache
	// did not answer for the call; a problem of one key is in its entry.
	lookup(ctx context.Context, table string, keys []string) ([]entry, error)
	// acquire tries to take the fill lease of each key of table for ttl.
	acquire(ctx context.Context, table string, keys []string, ttl time.Duration) ([]lease, error)
	// fill writes or releases each fill under its lease; ok[i] reports
	// whether fills[i] was written (false: the lease was lost). err is the
	// first failure.
	fill(ctx context.Context, fills []fill) (ok []bool, err error)
	// keyOnly reports whether err, returned by one of the calls above or
	// found in an entry or lease, is about one key (an error reply, an item
	// not in the record format) rather than the cache being down.
	keyOnly(err error) bool
}

// entry is one key's record as lookup found it.
type entry struct {
	row     []byte // a row: a hit
	deleted bool   // a tombstone: not found
	err     error  // this key's error; the rest of the entry is empty
}

// leaseState is what acquire found at a key.
type leaseState uint8

const (
	leaseFailed  leaseState = iota // lease.err says why
	leaseGranted                   // the caller may fill
	leaseHit                       // a row, in lease.row
	leaseDeleted                   // a tombstone
	leaseBusy                      // another reader holds the lease
	leaseSkipped                   // no fill possible now: read without filling
)

// lease is one answer of acquire.
type lease struct {
	state leaseState
	row   []byte
	err   error
	held  any // the store's granted lease, given back in fill
}

// fill is one write under a granted lease.
type fill struct {
	key     string
	lease   lease
	row     []byte // nil: a tombstone (the database has no such row)
	release bool   // give the lease back, write nothing
	ttl     time.Duration
}
