package metrics

import (
	"bufio"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCounterConcurrent(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Inc()
			}
			c.Add(5)
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(8*1005), c.Load())
}

func TestBucketLayout(t *testing.T) {
	assert.Equal(t, 10*time.Microsecond, Bound(0))
	assert.Less(t, Bound(NumBuckets-2), time.Hour)
	assert.GreaterOrEqual(t, Bound(NumBuckets-1), time.Hour)
	for i := 1; i < NumBuckets; i++ {
		ratio := float64(Bound(i)) / float64(Bound(i-1))
		assert.InDelta(t, 1.2, ratio, 0.001, "bucket %d", i)
	}
}

func TestObserveBoundaries(t *testing.T) {
	for _, i := range []int{0, 1, 50, NumBuckets - 1} {
		var h Histogram
		h.Observe(Bound(i)) // bounds are inclusive ("le")
		h.Observe(Bound(i) + 1)
		s := h.Snapshot()
		assert.Equal(t, uint64(1), s.Buckets[i], "bound %d", i)
		assert.Equal(t, uint64(1), s.Buckets[i+1], "just above bound %d", i)
	}
	var h Histogram
	h.Observe(-time.Second) // clock skew
	h.Observe(0)
	h.Observe(2 * time.Hour)
	s := h.Snapshot()
	assert.Equal(t, uint64(2), s.Buckets[0])
	assert.Equal(t, uint64(1), s.Buckets[NumBuckets])
	assert.Equal(t, uint64(3), s.Count)
	assert.Equal(t, 2*time.Hour, s.Sum)
}

func TestQuantileAccuracy(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Observe(time.Duration(i) * 100 * time.Microsecond) // uniform 0.1ms..1s
	}
	s := h.Snapshot()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.1, 100 * time.Millisecond}, {1, time.Second}} {
		got := s.Quantile(tc.q)
		assert.InEpsilon(t, float64(tc.want), float64(got), 0.2, "q=%v got %v", tc.q, got)
	}
	assert.InEpsilon(t, float64(500050*time.Microsecond), float64(s.Mean()), 0.001)
}

func TestQuantileEdges(t *testing.T) {
	var empty HistogramSnapshot
	assert.Equal(t, time.Duration(0), empty.Quantile(0.5))
	assert.Equal(t, time.Duration(0), empty.Mean())

	var h Histogram
	h.Observe(3 * time.Hour)
	s := h.Snapshot()
	assert.Equal(t, Bound(NumBuckets-1), s.Quantile(0.99), "+Inf bucket reports the largest bound")

	var one Histogram
	one.Observe(7 * time.Millisecond)
	s = one.Snapshot()
	for _, q := range []float64{-1, 0, 0.5, 1, 2} {
		got := s.Quantile(q)
		i := bucketOf(7 * time.Millisecond)
		assert.GreaterOrEqual(t, got, Bound(i-1), "q=%v", q)
		assert.LessOrEqual(t, got, Bound(i), "q=%v", q)
	}
}

func TestIntervalDelta(t *testing.T) {
	var h Histogram
	for range 1000 {
		h.Observe(time.Millisecond)
	}
	first := h.Snapshot()
	for range 100 {
		h.Observe(200 * time.Millisecond)
	}
	second := h.Snapshot()
	d := second.Sub(&first)
	assert.Equal(t, uint64(100), d.Count)
	assert.Equal(t, 20*time.Second, d.Sum)
	assert.InEpsilon(t, float64(200*time.Millisecond), float64(d.Quantile(0.5)), 0.2)
	assert.InEpsilon(t, float64(200*time.Millisecond), float64(d.Quantile(0.01)), 0.2)
	// Cumulative is unaffected by taking snapshots (no reset).
	assert.Equal(t, uint64(1100), h.Snapshot().Count)
	assert.Less(t, second.Quantile(0.5), 2*time.Millisecond)
}

// Adding two histograms' snapshots gives what one histogram holding both
// sets of observations would.
func TestSnapshotAdd(t *testing.T) {
	var a, b, both Histogram
	for i := range 50 {
		a.Observe(time.Duration(i) * time.Millisecond)
		both.Observe(time.Duration(i) * time.Millisecond)
	}
	for range 30 {
		b.Observe(2 * time.Second)
		both.Observe(2 * time.Second)
	}
	sum := a.Snapshot()
	sb := b.Snapshot()
	sum.Add(&sb)
	assert.Equal(t, both.Snapshot(), sum)
}

func TestHotPathAllocs(t *testing.T) {
	var h Histogram
	var c Counter
	allocs := testing.AllocsPerRun(1000, func() {
		h.Observe(123 * time.Millisecond)
		c.Inc()
	})
	assert.Zero(t, allocs)
}

func TestPrometheusText(t *testing.T) {
	var h Histogram
	h.Observe(5 * time.Millisecond)
	h.Observe(2 * time.Second)
	h.Observe(2 * time.Hour)
	s := h.Snapshot()

	var b strings.Builder
	p := NewPromWriter(&b)
	p.Family("cdc_changes_total", "counter", "Changes by outcome.\nSecond line")
	p.Counter("cdc_changes_total", 42, "table", `inv."x"\y`, "outcome", "applied")
	p.Family("up", "gauge", "Up.")
	p.Gauge("up", 0.5)
	p.Family("cdc_apply_seconds", "histogram", "Apply time.")
	p.Histogram("cdc_apply_seconds", &s, "table", "t1")
	require.NoError(t, p.Flush())
	out := b.String()

	assert.Contains(t, out, "# HELP cdc_changes_total Changes by outcome.\\nSecond line\n# TYPE cdc_changes_total counter\n")
	assert.Contains(t, out, `cdc_changes_total{table="inv.\"x\"\\y",outcome="applied"} 42`+"\n")
	assert.Contains(t, out, "up 0.5\n")
	assert.Contains(t, out, `cdc_apply_seconds_bucket{table="t1",le="+Inf"} 3`+"\n")
	assert.Contains(t, out, `cdc_apply_seconds_count{table="t1"} 3`+"\n")
	assert.Contains(t, out, `cdc_apply_seconds_sum{table="t1"} 7202.005`+"\n")

	// Buckets are cumulative, le ascending, in seconds.
	var prevLe, prevN float64 = -1, -1
	buckets := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cdc_apply_seconds_bucket") || strings.Contains(line, "+Inf") {
			continue
		}
		buckets++
		leStart := strings.Index(line, `,le="`) + 5
		leEnd := strings.Index(line[leStart:], `"`) + leStart
		le, err := strconv.ParseFloat(line[leStart:leEnd], 64)
		require.NoError(t, err)
		n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err)
		assert.Greater(t, le, prevLe)
		assert.GreaterOrEqual(t, n, prevN)
		if le >= 0.005 && prevLe < 0.005 {
			assert.Equal(t, 1.0, n, "5ms lands in the first bucket with le >= 0.005")
		}
		if le >= 2 && prevLe < 2 {
			assert.Equal(t, 2.0, n)
		}
		prevLe, prevN = le, n
	}
	assert.Equal(t, 38, buckets, "every third bound and the last: not 110 series per histogram")
	assert.InDelta(t, 3600, prevLe, 0.3*3600, "last finite bound is about an hour")
	assert.Equal(t, 2.0, prevN, "the 2h observation is only in +Inf")
	assert.False(t, math.IsNaN(prevLe))
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(1)
		for pb.Next() {
			d = d*7 + 12345
			h.Observe(d % time.Minute)
		}
	})
}
