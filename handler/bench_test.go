package handler_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// benchEvents returns n wrapped pushes of the recorded 6 KB orders update
// (schema included), each for its own row at its own binlog position, so
// every one is applied rather than stale.
func benchEvents(b *testing.B, n int) [][]byte {
	b.Helper()
	value := compact(debeziumcases.Load(b, "../testdata/debezium")["bench-orders-update"].Message())
	require.Equal(b, 2, bytes.Count(value, []byte(`"id":900001`)), "before and after carry the id")
	require.Equal(b, 1, bytes.Count(value, []byte(`"pos":123456789`)))
	out := make([][]byte, n)
	for i := range out {
		v := bytes.ReplaceAll(value, []byte(`"id":900001`), fmt.Appendf(nil, `"id":%d`, i))
		v = bytes.Replace(v, []byte(`"pos":123456789`), fmt.Appendf(nil, `"pos":%d`, 1000+i), 1)
		out[i] = push{data: v, id: "b", publishTime: publishTime, orderingKey: fmt.Sprintf(`{"id":%d}`, i)}.wrapped()
	}
	return out
}

// BenchmarkHandler measures one push through the whole handler: envelope,
// base64, the real decoder, the real store on the local Redis (one round
// trip), metrics. "stale" repeats one delivery (the duplicate path);
// "parallel" runs 50 pushes at a time, like a busy push subscription, and
// reports how many changes the store coalesced into each pipeline.
func BenchmarkHandler(b *testing.B) {
	b.Run("applied", func(b *testing.B) {
		c, prefix := testredis.Shared(b)
		r := newRig(b, c, prefix, "")
		bodies := benchEvents(b, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		serveAll(b, r, bodies)
	})
	b.Run("stale", func(b *testing.B) {
		c, prefix := testredis.Shared(b)
		r := newRig(b, c, prefix, "")
		body := benchEvents(b, 1)[0]
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rec := httptest.NewRecorder()
			r.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
			if rec.Code != http.StatusNoContent {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c, prefix := testredis.Shared(b)
		r := newRig(b, c, prefix, "")
		bodies := benchEvents(b, b.N)
		var next atomicCounter
		b.ReportAllocs()
		b.SetParallelism((50 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		before := r.store.Stats()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				r.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[next.inc()-1])))
				if rec.Code != http.StatusNoContent {
					b.Errorf("status %d", rec.Code)
				}
			}
		})
		b.StopTimer()
		st := r.store.Stats()
		b.ReportMetric(float64(st.ApplyCalls-before.ApplyCalls)/float64(st.ApplyPipelines-before.ApplyPipelines), "changes/pipeline")
	})
}

type atomicCounter struct{ n atomic.Int64 }

func (a *atomicCounter) inc() int64 { return a.n.Add(1) }

// BenchmarkHandlerLarge pushes 4 MiB rows (5.6 MB wrapped bodies) and
// reports the bytes allocated per body byte: the basis of the memory
// budget's charge per push (budget.go).
func BenchmarkHandlerLarge(b *testing.B) {
	c, prefix := testredis.Shared(b)
	r := newRig(b, c, prefix, "")
	email := strings.Repeat("large row ", 4<<20/10)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = push{data: event("c", i, email, int64(1000+i), 1714568645000), id: "l",
			publishTime: publishTime, orderingKey: keyOf(i)}.wrapped()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	serveAll(b, r, bodies)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(bodies[0])), "alloc_bytes/body_byte")
}

// serveAll pushes each body in turn; each must be answered 204.
func serveAll(b *testing.B, r *rig, bodies [][]byte) {
	for _, body := range bodies {
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
		if rec.Code != http.StatusNoContent {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
