package redisstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

const benchKeys = 1000

func benchChange(prefix string, i uint64) cdc.Change {
	k := int(i % benchKeys)
	return cdc.Change{Op: cdc.OpUpdate, Table: "db.rep", Key: prefix + "db.rep:" + strconv.Itoa(k),
		Version: ver(1, i+1), Row: rowJSON(k, int(i)), Server: "srv", ServerID: 1}
}

func BenchmarkApply(b *testing.B) {
	c, prefix := testredis.Shared(b)
	s := newTestStore(b, c, testConfig(prefix), Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Apply(ctx, benchChange(prefix, uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyParallel(b *testing.B) {
	c, prefix := testredis.Shared(b)
	s := newTestStore(b, c, testConfig(prefix), Options{})
	ctx := context.Background()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(32) // many handler requests in flight, as under Pub/Sub push
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Apply(ctx, benchChange(prefix, seq.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkApplyBatch(b *testing.B) {
	c, prefix := testredis.Shared(b)
	s := newTestStore(b, c, testConfig(prefix), Options{})
	ctx := context.Background()
	const size = 100
	batch := make([]cdc.Change, size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += size {
		for j := range batch {
			batch[j] = benchChange(prefix, uint64(i+j))
		}
		for _, r := range s.ApplyBatch(ctx, batch) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}
