package cacheaside_test

import (
	"context"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// One reader at a time: the latency of each path without queueing behind
// other readers (cmd/benchread measures 50 concurrent readers).
func BenchmarkGet(b *testing.B) {
	e := newEnv(b, "    fill: none\n")
	e.insert(1, "one", 1)
	e.apply(cdc.OpCreate, 1, `{"id":1,"name":"one","n":1}`, cdc.NewVersion(1, 1, 0))
	ctx := context.Background()
	r := e.reader(cacheaside.Options{})
	b.Run("hit", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Get(ctx, e.table, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 50 readers on GOMAXPROCS=2, as cmd/benchread runs them.
	b.Run("hit-50-readers", func(b *testing.B) {
		b.SetParallelism(25)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Get(ctx, e.table, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	e.insert(2, "two", 2)
	b.Run("miss-nofill", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Get(ctx, e.table, 2); err != nil {
				b.Fatal(err)
			}
		}
	})
	rows := mysqlrow.NewReader(e.db, e.cfg)
	b.Run("db-direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := rows.Row(ctx, e.table, 2); err != nil {
				b.Fatal(err)
			}
		}
	})
}
