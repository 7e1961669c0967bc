package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// benchCache is the cache a run measures: what the phases need of Redis or
// memcached besides the Reader.
type benchCache interface {
	// reader is a cacheaside Reader over the cache.
	reader(db *sql.DB, cfg *cdc.Config) *cacheaside.Reader
	// write stores rows as the change stream's snapshot would, at version.
	write(ctx context.Context, rows []mysqlrow.Row, version cdc.Version) error
	// clear removes the benchmark's records (rows, leases, checkpoint).
	clear(ctx context.Context) error
	// setCheckpoint records v as the checkpoint of the server streaming
	// table, as the change stream would.
	setCheckpoint(ctx context.Context, table string, v cdc.Version) error
	close()
}

// openCache connects to the cache s names and checks it answers.
func openCache(ctx context.Context, s settings) (benchCache, error) {
	if s.cache == "memcached" {
		mc, err := memcachestore.NewClient(strings.Split(s.memcache, ","), memcachestore.ClientOptions{MaxIdle: s.readers + 8})
		if err != nil {
			return nil, err
		}
		c := &memcacheBench{mc: mc, prefix: s.prefix, table: s.table, rows: s.rows}
		// A read of the checkpoint item checks every node on its way.
		if _, err := memcachestore.ReadCheckpoints(ctx, mc, s.prefix); err != nil {
			mc.Close()
			return nil, fmt.Errorf("memcached: %w", err)
		}
		return c, nil
	}
	opt, err := redis.ParseURL(s.redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.PoolSize = s.readers + 8
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return redisBench{rdb: rdb, prefix: s.prefix}, nil
}

// redisBench is the benchmark's Redis: records under its prefix.
type redisBench struct {
	rdb    *redis.Client
	prefix string
}

func (c redisBench) reader(db *sql.DB, cfg *cdc.Config) *cacheaside.Reader {
	return cacheaside.New(c.rdb, db, cfg, cacheaside.Options{})
}

func (c redisBench) write(ctx context.Context, rows []mysqlrow.Row, version cdc.Version) error {
	pipe := c.rdb.Pipeline()
	for _, r := range rows {
		pipe.HSet(ctx, r.Key, redisstore.FieldVersion, string(version), redisstore.FieldData, r.JSON)
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (c redisBench) clear(ctx context.Context) error { return deletePrefix(ctx, c.rdb, c.prefix) }

func (c redisBench) setCheckpoint(ctx context.Context, table string, v cdc.Version) error {
	return c.rdb.HSet(ctx, redisstore.CheckpointKey(c.prefix), "table|"+table, "benchread", "benchread", string(v)).Err()
}

func (c redisBench) close() { c.rdb.Close() }

// memcacheBench is the benchmark's memcached. memcached cannot list or
// delete keys by prefix, so clear deletes every key the run can have
// written: the record of each id of the table, its truncate watermark and
// the checkpoint item; the memcached may serve others meanwhile.
type memcacheBench struct {
	mc     *memcachestore.Client
	prefix string
	table  string
	rows   int
}

func (c *memcacheBench) reader(db *sql.DB, cfg *cdc.Config) *cacheaside.Reader {
	return cacheaside.NewMemcached(c.mc, db, cfg, cacheaside.Options{})
}

func (c *memcacheBench) write(ctx context.Context, rows []mysqlrow.Row, version cdc.Version) error {
	ops := make([]*memcachestore.Op, len(rows))
	for i, r := range rows {
		rec := memcachestore.Record{Kind: memcachestore.KindRow, Version: version, Row: r.JSON}
		ops[i] = &memcachestore.Op{Key: memcachestore.Key(c.prefix, r.Key), Set: true, Value: rec.Append(nil)}
	}
	return c.do(ctx, ops)
}

func (c *memcacheBench) clear(ctx context.Context) error {
	const batch = 2000
	for first := 1; first <= c.rows; first += batch {
		var ops []*memcachestore.Op
		if first == 1 {
			ops = append(ops,
				&memcachestore.Op{Key: memcachestore.CheckpointKey(c.prefix), Delete: true},
				&memcachestore.Op{Key: memcachestore.TruncatedKey(c.prefix, c.table), Delete: true})
		}
		for id := first; id < first+batch && id <= c.rows; id++ {
			key := c.prefix + c.table + ":" + strconv.Itoa(id)
			ops = append(ops, &memcachestore.Op{Key: memcachestore.Key(c.prefix, key), Delete: true})
		}
		if err := c.do(ctx, ops); err != nil {
			return err
		}
	}
	return nil
}

func (c *memcacheBench) setCheckpoint(ctx context.Context, table string, v cdc.Version) error {
	cps := memcachestore.Checkpoints{
		Servers: map[string]memcachestore.Checkpoint{"benchread": {Version: v}},
		Tables:  map[string]string{table: "benchread"},
	}
	val, err := json.Marshal(cps)
	if err != nil {
		return err
	}
	return c.do(ctx, []*memcachestore.Op{{Key: memcachestore.CheckpointKey(c.prefix), Set: true, Value: val}})
}

func (c *memcacheBench) close() { c.mc.Close() }

// do runs ops and returns the first error (a delete finding nothing is
// not one).
func (c *memcacheBench) do(ctx context.Context, ops []*memcachestore.Op) error {
	c.mc.Do(ctx, ops)
	for _, op := range ops {
		if op.Err != nil {
			return fmt.Errorf("memcached %s: %w", op.Key, op.Err)
		}
		if op.Set && op.Status != memcachestore.StatusStored {
			return fmt.Errorf("memcached %s: not stored", op.Key)
		}
	}
	return nil
}
