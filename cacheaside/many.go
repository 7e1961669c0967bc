package cacheaside

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// GetMany returns the rows of table with the keys pks: result[i] is the
// canonical JSON of pks[i]'s row, nil when the row does not exist (a
// tombstone or no row in the database). Any error fails the whole batch.
//
// It makes one cache round trip for the batch (pipelined), one more
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

	miss := make([]int, 0, len(pks)) // indexes not answered by the cache
	noFill := map[int]bool{}         // misses whose key the cache refused: no lease, no fill
	if cached && r.cacheUp() {
		es, err := r.cache.lookup(ctx, table, keys)
		if err != nil {
			if ctx.Err() != nil {
				r.m.errors.Inc()
				return nil, fmt.Errorf("cacheaside: %s: %w", table, ctx.Err())
			}
			r.cacheError(err)
		}
		for i := range keys {
			switch {
			case es == nil:
			case es[i].err != nil:
				r.keyFailed()
				noFill[i] = true
			case es[i].row != nil:
				r.m.hits.Inc()
				out[i] = json.RawMessage(es[i].row)
				continue
			case es[i].deleted:
				r.m.tombstoneHits.Inc()
				continue
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

	leases := map[int]lease{} // granted leases by index
	if cached && tcfg.Fill == cdc.FillLease && r.cacheUp() {
		var mk []string
		var mi []int // indexes of mk
		for _, i := range miss {
			if !noFill[i] {
				mk, mi = append(mk, keys[i]), append(mi, i)
			}
		}
		var ls []lease
		var err error
		if len(mk) > 0 {
			ls, err = r.cache.acquire(ctx, table, mk, r.opts.LeaseTTL)
		}
		if err != nil && ctx.Err() != nil {
			r.m.errors.Inc()
			return nil, fmt.Errorf("cacheaside: %w", err)
		}
		if err != nil {
			r.cacheError(err)
		} else {
			answered := map[int]bool{}
			for j, i := range mi {
				switch ls[j].state {
				case leaseHit:
					r.m.lateHits.Inc()
					out[i] = json.RawMessage(ls[j].row)
					answered[i] = true
				case leaseDeleted:
					r.m.lateHits.Inc()
					answered[i] = true
				case leaseGranted:
					leases[i] = ls[j]
				case leaseFailed:
					r.keyFailed()
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
	var fills []fill
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
func (r *Reader) releaseAll(ctx context.Context, keys []string, leases map[int]lease) {
	if len(leases) == 0 {
		return
	}
	fills := make([]fill, 0, len(leases))
	for i, l := range leases {
		fills = append(fills, fill{key: keys[i], lease: l, release: true})
	}
	r.fill(ctx, fills)
}
