package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The benchmarks below put our Counter and Histogram beside
// prometheus/client_golang's on the same hot-path operations, in one run,
// so docs/performance.md can give their ratio (issue 17: prefer the
// ecosystem's library where it costs no measurable CPU).

// promBounds are our 110 bucket bounds in seconds, so both libraries do
// the same bucket search.
func promBounds() []float64 {
	b := make([]float64, NumBuckets)
	for i := range b {
		b[i] = Bound(i).Seconds()
	}
	return b
}

// lagDurations cycles through lags from 1 ms to ~20 s.
var lagDurations = func() []time.Duration {
	d := make([]time.Duration, 256)
	for i := range d {
		d[i] = time.Duration(1+i*i*300) * time.Microsecond
	}
	return d
}()

func BenchmarkCompareCounterOurs(b *testing.B) {
	var c Counter
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkCompareCounterClientGolang(b *testing.B) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c"})
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkCompareCounterVecClientGolang(b *testing.B) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"table", "outcome"})
	for b.Loop() {
		c.WithLabelValues("inventory.customers", "applied").Inc()
	}
}

func BenchmarkCompareHistogramOurs(b *testing.B) {
	var h Histogram
	i := 0
	for b.Loop() {
		h.Observe(lagDurations[i&255])
		i++
	}
}

func BenchmarkCompareHistogramClientGolang110(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: promBounds()})
	i := 0
	for b.Loop() {
		h.Observe(lagDurations[i&255].Seconds())
		i++
	}
}

func BenchmarkCompareHistogramClientGolang20(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)})
	i := 0
	for b.Loop() {
		h.Observe(lagDurations[i&255].Seconds())
		i++
	}
}

func BenchmarkCompareHistogramOursParallel(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.Observe(lagDurations[i&255])
			i++
		}
	})
}

func BenchmarkCompareHistogramClientGolang110Parallel(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: promBounds()})
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.Observe(lagDurations[i&255].Seconds())
			i++
		}
	})
}
