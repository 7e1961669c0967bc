package cacheaside

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// ErrNotFound is returned when the row does not exist: a tombstone in the
// cache or no row in the database.
var ErrNotFound = errors.New("cacheaside: not found")

// Options tune a Reader; the zero value gives the defaults.
type Options struct {
	// LeaseTTL bounds how long a fill lease blocks other fillers if its
	// holder dies; default 2s.
	LeaseTTL time.Duration
	// LeaseWait is how long a reader that finds another's lease polls Redis
	// for the fill before reading the database itself (without filling);
	// default 50ms.
	LeaseWait time.Duration
	// MaxDBConcurrency caps the Reader's database reads in flight, with
	// Redis up (a cold cache: every key a miss) as well as down, so misses
	// queue here rather than open connections up to Cloud SQL's limit;
	// default 16 (mysqlrow.Open's pool allows DefaultMaxOpenConns).
	MaxDBConcurrency int
	// RedisBackoff is how long reads skip the cache (Redis, or memcached
	// with NewMemcached) after it failed; default 1s.
	RedisBackoff time.Duration
	// QueryTimeout bounds a shared miss (lease, query, fill), which runs on
	// behalf of every caller waiting for it and so not under one caller's
	// context; default 5s.
	QueryTimeout time.Duration
	// AfterDBRead, if set, runs after a lease holder read the database and
	// before it fills (tests use it to apply a change in between).
	AfterDBRead func(table, key string)
}

func (o *Options) defaults() {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Second
	}
	if o.LeaseWait <= 0 {
		o.LeaseWait = 50 * time.Millisecond
	}
	if o.MaxDBConcurrency <= 0 {
		o.MaxDBConcurrency = 16
	}
	if o.RedisBackoff <= 0 {
		o.RedisBackoff = time.Second
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
}

// Reader reads rows cache-aside. It is safe for concurrent use.
type Reader struct {
	cache cache
	rows  *mysqlrow.Reader
	cfg   *cdc.Config
	opts  Options // defaults filled in

	flight singleflight.Group // one database read per key at a time
	dbSlot chan struct{}      // semaphore of database reads in flight (MaxDBConcurrency)

	// cacheDownUntil is the Unix-nano time before which reads skip the
	// cache.
	cacheDownUntil atomic.Int64

	m counters
}

// New returns a Reader over a Redis client and the primary database. db
// must be opened with mysqlrow.Open (or a driver config through
// mysqlrow.Configure); cfg is the cache configuration the change stream
// uses (prefix, per-table key, columns, ttl, fill, negative_ttl). For
// memcached, see NewMemcached.
func New(rdb redis.UniversalClient, db *sql.DB, cfg *cdc.Config, opts Options) *Reader {
	return newReader(redisCache{rdb: rdb, prefix: cfg.Prefix}, db, cfg, opts)
}

func newReader(c cache, db *sql.DB, cfg *cdc.Config, opts Options) *Reader {
	opts.defaults()
	return &Reader{
		cache:  c,
		rows:   mysqlrow.NewReader(db, cfg),
		cfg:    cfg,
		opts:   opts,
		dbSlot: make(chan struct{}, opts.MaxDBConcurrency),
	}
}

// Get returns the row of table ("db.table") with primary-key values pk (in
// key-column order: integers, strings, []byte for binary keys, or
// json.RawMessage holding a canonical value such as "12.30") as canonical
// JSON, or ErrNotFound. The returned slice belongs to the caller.
func (r *Reader) Get(ctx context.Context, table string, pk ...any) (json.RawMessage, error) {
	start := time.Now()
	tcfg, cached := r.lookup(table)
	key, err := r.key(table, pk)
	if err != nil {
		r.m.errors.Inc()
		return nil, err
	}
	if cached && r.cacheUp() {
		es, err := r.cache.lookup(ctx, table, []string{key})
		switch {
		case err == nil && es[0].err != nil:
			r.keyFailed()
			cached = false // that key alone: read the database, no lease, no fill
		case err == nil && es[0].row != nil:
			r.m.hits.Inc()
			r.m.hitLatency.Observe(time.Since(start))
			return json.RawMessage(es[0].row), nil
		case err == nil && es[0].deleted:
			r.m.tombstoneHits.Inc()
			r.m.hitLatency.Observe(time.Since(start))
			return nil, ErrNotFound
		case err == nil:
		case ctx.Err() != nil:
			r.m.errors.Inc()
			return nil, fmt.Errorf("cacheaside: %s: %w", key, ctx.Err())
		default:
			if r.cacheError(err) {
				cached = false
			}
		}
	}
	r.m.misses.Inc()
	ch := r.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.QueryTimeout)
		defer cancel()
		return r.load(fctx, table, tcfg, cached, key, pk)
	})
	var res singleflight.Result
	select {
	case <-ctx.Done():
		r.m.errors.Inc()
		return nil, fmt.Errorf("cacheaside: %s: %w", key, ctx.Err())
	case res = <-ch:
	}
	r.m.missLatency.Observe(time.Since(start))
	if errors.Is(res.Err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if res.Err != nil {
		r.m.errors.Inc()
		return nil, res.Err
	}
	row := res.Val.([]byte)
	if res.Shared {
		row = append([]byte(nil), row...)
	}
	return json.RawMessage(row), nil
}

// load answers a miss: under a lease where the table fills, else straight
// from the database. It returns the row JSON or ErrNotFound.
func (r *Reader) load(ctx context.Context, table string, tcfg *cdc.Table, cached bool, key string, pk []any) ([]byte, error) {
	if !cached || tcfg.Fill != cdc.FillLease || !r.cacheUp() {
		return jsonOf(r.readDB(ctx, table, pk))
	}
	leases, err := r.cache.acquire(ctx, table, []string{key}, r.opts.LeaseTTL)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		r.cacheError(err)
		return jsonOf(r.readDB(ctx, table, pk))
	}
	l := leases[0]
	switch l.state {
	case leaseHit:
		r.m.lateHits.Inc()
		return l.row, nil
	case leaseDeleted:
		r.m.lateHits.Inc()
		return nil, ErrNotFound
	case leaseBusy:
		return r.awaitFill(ctx, table, key, pk)
	case leaseFailed:
		r.keyFailed()
		return jsonOf(r.readDB(ctx, table, pk))
	case leaseSkipped:
		return jsonOf(r.readDB(ctx, table, pk))
	}
	row, err := r.readDB(ctx, table, pk)
	if r.opts.AfterDBRead != nil {
		r.opts.AfterDBRead(table, key)
	}
	r.fill(ctx, []fill{fillFor(tcfg, key, l, row, err)})
	return jsonOf(row, err)
}

// fillFor is the write a lease holder makes after reading the database:
// the row if the database returned the requested key; a tombstone for no row
// when the table caches negatives; otherwise just the lease given back (also
// when the database matched the key only case-insensitively: the change
// stream would never update a record under the spelling asked for).
func fillFor(tcfg *cdc.Table, key string, l lease, row mysqlrow.Row, err error) fill {
	f := fill{key: key, lease: l, release: true}
	switch {
	case err == nil && row.Key == key:
		f.row, f.ttl, f.release = row.JSON, tcfg.TTL, false
	case errors.Is(err, ErrNotFound) && tcfg.NegativeTTL > 0:
		f.row, f.ttl, f.release = nil, tcfg.NegativeTTL, false
	}
	return f
}

// fill writes lease fills in one round trip and counts the outcomes. A
// failed fill costs nothing but a later miss, so errors are counted, not
// returned.
func (r *Reader) fill(ctx context.Context, fills []fill) {
	ok, err := r.cache.fill(ctx, fills)
	if err != nil {
		r.m.errors.Inc()
		if ctx.Err() == nil {
			r.cacheError(err)
		}
		if ok == nil {
			return
		}
	}
	for i, f := range fills {
		switch {
		case f.release:
		case ok[i]:
			r.m.fills.Inc()
		case err == nil:
			r.m.fillConflicts.Inc()
		}
	}
}

// maxPollPause caps the doubling pause between polls for another's fill.
const maxPollPause = 20 * time.Millisecond

// awaitFill polls the cache with doubling pauses for another reader's fill,
// up to LeaseWait, then reads the database without filling.
func (r *Reader) awaitFill(ctx context.Context, table, key string, pk []any) ([]byte, error) {
	r.m.leaseWaits.Inc()
	deadline := time.Now().Add(r.opts.LeaseWait)
	pause := time.Millisecond
	timer := time.NewTimer(pause)
	defer timer.Stop()
	keys := []string{key}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
		es, err := r.cache.lookup(ctx, table, keys)
		if err == nil && es[0].err != nil {
			err = es[0].err
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.cacheError(err)
			return jsonOf(r.readDB(ctx, table, pk))
		}
		if es[0].row != nil {
			r.m.lateHits.Inc()
			return es[0].row, nil
		}
		if es[0].deleted {
			r.m.lateHits.Inc()
			return nil, ErrNotFound
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		pause = min(2*pause, maxPollPause, left)
		timer.Reset(pause)
	}
	r.m.leaseTimeout.Inc()
	return jsonOf(r.readDB(ctx, table, pk))
}

// readDB reads one row from the database, or ErrNotFound.
func (r *Reader) readDB(ctx context.Context, table string, pk []any) (mysqlrow.Row, error) {
	release, err := r.dbTurn(ctx)
	if err != nil {
		return mysqlrow.Row{}, err
	}
	defer release()
	r.m.dbQueries.Inc()
	row, err := r.rows.Row(ctx, table, pk...)
	if errors.Is(err, mysqlrow.ErrNoRow) {
		return mysqlrow.Row{}, ErrNotFound
	}
	if err != nil {
		return mysqlrow.Row{}, fmt.Errorf("cacheaside: %w", err)
	}
	return row, nil
}

// jsonOf is the answer of a database read.
func jsonOf(row mysqlrow.Row, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return row.JSON, nil
}
