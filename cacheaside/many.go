package cacheaside

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// GetMany returns the rows of table with the keys pks: result[i] is the
// canonical JSON of pks[i]'s row, nil when the row does not exist (a
// tombstone or no row in the database). Any error fails the whole batch.
//
// It makes one Redis round trip for the batch (pipelined HMGET), one more
// to take leases on the misses of a lease-fill table, one database query
// for all remaining misses (per mysqlrow.MaxBatch keys) and one pipeline of
// fills. Unlike Get it does not wait for other readers' leases (those keys
// are read from the database and not filled) and does not share queries
// with concurrent calls.
func (r *Reader) GetMany(ctx context.Context, table string, pks [][]any) ([]json.RawMessage, error) {
	start := time.Now()
	defer func() { r.m.batchLatency.Observe(time.Since(start)) }()
	out := make([]json.RawMessage, len(pks))
	tcfg, cached := r.lookup(table)
	keys := make([]string, len(pks))
	for i, pk := range pks {
		k, err := r.key(table, pk)
		if err != nil {
			r.m.errors.Inc()
			return nil, err
		}
		keys[i] = k
	}

	miss := make([]int, 0, len(pks)) // indexes not answered by Redis
	noFill := map[int]bool{}         // misses whose key Redis refused: no lease, no fill
	if cached && r.redisUp() {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HMGet(ctx, k, redisstore.FieldData, redisstore.FieldTombstone)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			if ctx.Err() != nil {
				r.m.errors.Inc()
				return nil, fmt.Errorf("cacheaside: %s: %w", table, ctx.Err())
			}
			// An error reply fails only its own key; any other error
			// fails them all alike (the connection).
			for _, cmd := range cmds {
				if err := cmd.Err(); err != nil && !keyError(err) {
					r.redisFailed(err)
					cmds = nil
					break
				}
			}
		}
		for i := range keys {
			if cmds != nil {
				if cmds[i].Err() != nil {
					r.redisError(cmds[i].Err())
					noFill[i] = true
					miss = append(miss, i)
					continue
				}
				vals := cmds[i].Val()
				if d, ok := vals[0].(string); ok {
					r.m.hits.Inc()
					out[i] = json.RawMessage(d)
					continue
				}
				if vals[1] != nil {
					r.m.tombstoneHits.Inc()
					continue
				}
			}
			miss = append(miss, i)
		}
	} else {
		for i := range keys {
			miss = append(miss, i)
		}
	}
	r.m.misses.Add(uint64(len(miss)))
	if len(miss) == 0 {
		return out, nil
	}

	leases := map[int]redisstore.Lease{} // granted leases by index
	if cached && tcfg.Fill == cdc.FillLease && r.redisUp() {
		var mk []string
		var mi []int // indexes of mk
		for _, i := range miss {
			if !noFill[i] {
				mk, mi = append(mk, keys[i]), append(mi, i)
			}
		}
		var ls []redisstore.Lease
		var err error
		if len(mk) > 0 {
			ls, err = redisstore.AcquireLeases(ctx, r.rdb, r.cfg.Prefix, table, mk, r.opts.LeaseTTL)
		}
		if err != nil && ctx.Err() != nil {
			r.m.errors.Inc()
			return nil, fmt.Errorf("cacheaside: %w", err)
		}
		if err != nil {
			r.redisError(err)
		} else {
			answered := map[int]bool{}
			for j, i := range mi {
				switch ls[j].State {
				case redisstore.LeaseHit:
					r.m.lateHits.Inc()
					out[i] = json.RawMessage(ls[j].Row)
					answered[i] = true
				case redisstore.LeaseDeleted:
					r.m.lateHits.Inc()
					answered[i] = true
				case redisstore.LeaseGranted:
					leases[i] = ls[j]
				}
			}
			need := miss[:0]
			for _, i := range miss {
				if !answered[i] {
					need = append(need, i)
				}
			}
			miss = need
		}
	}

	found, err := r.readMany(ctx, table, keys, pks, miss)
	if err != nil {
		r.m.errors.Inc()
		r.releaseAll(ctx, keys, leases)
		return nil, err
	}
	var fills []redisstore.Fill
	for _, i := range miss {
		row, ok := found[i]
		if ok {
			out[i] = json.RawMessage(row.JSON)
		}
		if l, held := leases[i]; held {
			var err error
			if !ok {
				err = ErrNotFound
			}
			fills = append(fills, fillFor(tcfg, keys[i], l, row, err))
		}
	}
	if len(fills) > 0 {
		r.fill(ctx, fills)
	}
	return out, nil
}

// readMany reads the rows of the keys at idx in one query and returns them
// by index. Rows that came back under another spelling of a requested key
// (case-insensitive collations) cannot be matched by key, so the keys left
// unmatched are then read one by one.
func (r *Reader) readMany(ctx context.Context, table string, keys []string, pks [][]any, idx []int) (map[int]mysqlrow.Row, error) {
	found := make(map[int]mysqlrow.Row, len(idx))
	if len(idx) == 0 {
		return found, nil
	}
	release, err := r.dbTurn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	want := make([][]any, 0, len(idx))
	byKey := make(map[string][]int, len(idx)) // a key may be asked for twice
	for _, i := range idx {
		if _, dup := byKey[keys[i]]; !dup {
			want = append(want, pks[i])
		}
		byKey[keys[i]] = append(byKey[keys[i]], i)
	}
	r.m.dbQueries.Inc()
	rows, err := r.rows.Rows(ctx, table, want)
	if err != nil {
		return nil, fmt.Errorf("cacheaside: %w", err)
	}
	matched := 0
	for _, row := range rows {
		if ids, ok := byKey[row.Key]; ok {
			matched++
			for _, i := range ids {
				found[i] = row
			}
		}
	}
	if matched == len(rows) {
		return found, nil
	}
	for _, i := range idx {
		if _, ok := found[i]; ok {
			continue
		}
		r.m.dbQueries.Inc()
		row, err := r.rows.Row(ctx, table, pks[i]...)
		switch {
		case err == nil:
			found[i] = row
		case !errors.Is(err, mysqlrow.ErrNoRow):
			return nil, fmt.Errorf("cacheaside: %w", err)
		}
	}
	return found, nil
}

// releaseAll gives back leases a failed batch will not fill.
func (r *Reader) releaseAll(ctx context.Context, keys []string, leases map[int]redisstore.Lease) {
	if len(leases) == 0 {
		return
	}
	fills := make([]redisstore.Fill, 0, len(leases))
	for i, l := range leases {
		fills = append(fills, redisstore.Fill{Key: keys[i], Lease: l, Release: true})
	}
	r.fill(ctx, fills)
}
