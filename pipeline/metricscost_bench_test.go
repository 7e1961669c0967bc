package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// appliedStore answers every change applied, without a cache: what is left
// is the core's own CPU per change (decode, metrics), the part a metrics
// library can change.
type appliedStore struct{ extra func() }

func (s appliedStore) ApplyBatch(_ context.Context, changes []cdc.Change) []cdc.Result {
	res := make([]cdc.Result, len(changes))
	for i := range res {
		res[i].Outcome = cdc.OutcomeApplied
		if s.extra != nil {
			s.extra()
		}
	}
	return res
}

// BenchmarkCoreMetricsCost measures one message through the core (the
// recorded 6 KB orders update, decoded by the real decoder) with our
// metrics ("ours") and with, in addition, what prometheus/client_golang
// would do per change in their place ("plus-client_golang": one counter Inc
// and four histogram Observes on children looked up once, as the core
// would keep them). The difference is an upper bound of what switching the
// hot path to client_golang would cost per change; docs/performance.md has
// the figures.
func BenchmarkCoreMetricsCost(b *testing.B) {
	tc := debeziumcases.Load(b, "../testdata/debezium")["bench-orders-update"]
	var buf bytes.Buffer
	if err := json.Compact(&buf, tc.Message()); err != nil {
		b.Fatal(err)
	}
	value, key := buf.Bytes(), tc.MessageKey()
	bounds := make([]float64, metrics.NumBuckets)
	for i := range bounds {
		bounds[i] = metrics.Bound(i).Seconds()
	}
	reg := prometheus.NewRegistry()
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "m"}, []string{"table", "outcome"})
	hists := make([]prometheus.Observer, 4)
	for i, name := range []string{"a", "b", "c", "d"} {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Buckets: bounds}, []string{"table"})
		reg.MustRegister(v)
		hists[i] = v.WithLabelValues("inventory.orders")
	}
	applied := msgs.WithLabelValues("inventory.orders", "applied")
	clientGolang := func() {
		applied.Inc()
		for _, h := range hists {
			h.Observe(0.0123) // a lag of 12.3 ms: a bucket search like any other
		}
	}
	for _, bc := range []struct {
		name  string
		extra func()
	}{{"ours", nil}, {"plus-client_golang", clientGolang}} {
		b.Run(bc.name, func(b *testing.B) {
			core := pipeline.New(pipeline.Config{Decoder: debezium.NewDecoder(nil), Store: appliedStore{bc.extra},
				Parker: failParker{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			msg := []pipeline.Message{{Data: value, Key: key, PublishTime: time.Now()}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if v := core.Process(ctx, msg); v[0] != pipeline.Ack {
					b.Fatalf("verdict %v", v[0])
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			core := pipeline.New(pipeline.Config{Decoder: debezium.NewDecoder(nil), Store: appliedStore{bc.extra},
				Parker: failParker{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := []pipeline.Message{{Data: value, Key: key, PublishTime: time.Now()}}
				for pb.Next() {
					if v := core.Process(ctx, msg); v[0] != pipeline.Ack {
						b.Errorf("verdict %v", v[0])
						return
					}
				}
			})
		})
	}
}

// failParker is never reached: every benchmark message decodes.
type failParker struct{}

func (failParker) Park(context.Context, pipeline.Rejected) error { return io.ErrUnexpectedEOF }
