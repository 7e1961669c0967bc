package localrun

import (
	"context"
	"fmt"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
)

// The values of Config.Cache.
const (
	CacheRedis     = "redis"
	CacheMemcached = "memcached"
)

// RejectTopic is the topic ID where a memcached run parks rejected messages
// (REJECT_TOPIC on the run's Pub/Sub fake, KAFKA_DLQ_TOPIC on its Kafka
// fake): memcached has no stream to keep them in.
const RejectTopic = "rejected"

// clearBatch is the deletes sent per pipelined round trip when clearing.
const clearBatch = 2000

// ClearMemcached deletes every item a run of gen can write under prefix:
// each row's record (changegen's AllKeys, which also holds the rows' fill
// leases), each table's truncate watermark and fill floor, and the
// checkpoint. memcached cannot list or delete keys by prefix, so this is how
// a run starts from an empty namespace; it returns how many items existed.
func ClearMemcached(ctx context.Context, mc *memcachestore.Client, prefix string, gen *changegen.Generator) (int, error) {
	keys := []string{memcachestore.CheckpointKey(prefix)}
	for _, t := range gen.Tables() {
		keys = append(keys, memcachestore.TruncatedKey(prefix, t), memcachestore.FloorKey(prefix, t))
	}
	for _, k := range gen.AllKeys() {
		keys = append(keys, memcachestore.Key(prefix, prefix+k))
	}
	n := 0
	for start := 0; start < len(keys); start += clearBatch {
		batch := keys[start:min(start+clearBatch, len(keys))]
		ops := make([]*memcachestore.Op, len(batch))
		for i, k := range batch {
			ops[i] = &memcachestore.Op{Key: k, Delete: true}
		}
		mc.Do(ctx, ops)
		for _, op := range ops {
			if op.Err != nil {
				return n, fmt.Errorf("clear: memcached %s: %w", op.Key, op.Err)
			}
			if op.Status == memcachestore.StatusStored {
				n++
			}
		}
	}
	return n, nil
}

// MemcachedRecords reads records from memcached for VerifyRecords: keys
// (prefix included) are grouped by table, so each table's truncate
// watermark applies (a record at or below it counts as absent).
func MemcachedRecords(mc *memcachestore.Client, prefix string) Records {
	return func(ctx context.Context, keys []string) ([]Cached, error) {
		byTable := map[string][]int{}
		for i, k := range keys {
			table, _, ok := strings.Cut(strings.TrimPrefix(k, prefix), ":")
			if !ok {
				return nil, fmt.Errorf("verify: key %q is not %s<db.table>:<id>", k, prefix)
			}
			byTable[table] = append(byTable[table], i)
		}
		out := make([]Cached, len(keys))
		for table, idx := range byTable {
			tkeys := make([]string, len(idx))
			for j, i := range idx {
				tkeys[j] = keys[i]
			}
			for j, f := range memcachestore.Read(ctx, mc, prefix, table, tkeys) {
				if f.Err != nil {
					return nil, fmt.Errorf("verify: %w", f.Err)
				}
				r := f.Record
				out[idx[j]] = Cached{Version: string(r.Version), Row: r.Row,
					HasRow: r.Kind == memcachestore.KindRow, Tombstone: r.Kind == memcachestore.KindTombstone}
			}
		}
		return out, nil
	}
}
