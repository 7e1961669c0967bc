// Package metrics holds the in-process counters and latency histograms of
// cloudsql-cache: allocation-free to update on the hot path, cumulative (never
// reset, as Prometheus expects), with snapshots whose difference gives
// per-interval counts and quantiles for the periodic summary log entry, and a
// small writer for the Prometheus text exposition format.
//
// Unit: histograms observe time.Duration. Bucket upper bounds grow by 1.2x
// from 10µs to 1h (110 bounds, then +Inf), so a quantile read from the buckets
// is within about 20% of the true value. Prometheus output is in seconds (the
// Prometheus base unit) and publishes every third bound (ExposeEvery);
// callers that want milliseconds convert the time.Duration that Quantile
// returns.
package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// Counter is a monotonically increasing count, safe for concurrent use.
type Counter struct {
	v atomic.Uint64
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the current count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Histogram bucket layout: bounds[i] = minBound * growth^i, the last bound is
// the first one at or above maxBound.
const (
	minBound = 10 * time.Microsecond
	maxBound = time.Hour
	growth   = 1.2
)

// NumBuckets is the number of finite buckets; a histogram has one more, +Inf.
const NumBuckets = 110

// bounds holds the upper bound of each finite bucket (inclusive, like
// Prometheus "le"). Computed once; read-only afterwards.
var bounds = func() [NumBuckets]time.Duration {
	var b [NumBuckets]time.Duration
	for i := range b {
		b[i] = time.Duration(math.Round(float64(minBound) * math.Pow(growth, float64(i))))
	}
	if b[NumBuckets-2] >= maxBound || b[NumBuckets-1] < maxBound {
		panic("metrics: NumBuckets does not match the bucket layout")
	}
	return b
}()

// Bound returns the upper bound of finite bucket i (0 <= i < NumBuckets).
func Bound(i int) time.Duration { return bounds[i] }

// Histogram counts durations in fixed log-scale buckets, safe for concurrent
// use. The zero value is ready to use.
type Histogram struct {
	buckets [NumBuckets + 1]atomic.Uint64 // last one is +Inf
	count   atomic.Uint64
	sumUs   atomic.Int64 // microseconds: ~2.5e9 one-hour observations before overflow
}

// Observe records one duration. Negative durations (clock skew between
// hosts) count as zero.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(d)].Add(1)
	h.count.Add(1)
	h.sumUs.Add(int64(d / time.Microsecond))
}

// bucketOf returns the index of the first bucket whose bound is >= d, or
// NumBuckets for +Inf. A binary search: exact at the boundaries, no floats.
func bucketOf(d time.Duration) int {
	lo, hi := 0, NumBuckets
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Snapshot returns the histogram's cumulative state. Buckets are read one by
// one, so under concurrent updates Count may differ slightly from the bucket
// total; Quantile uses the bucket total.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range h.buckets {
		s.Buckets[i] = h.buckets[i].Load()
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sumUs.Load()) * time.Microsecond
	return s
}

// HistogramSnapshot is a copy of a histogram's counts. Snapshots are values:
// subtract an earlier one to get what happened in between.
type HistogramSnapshot struct {
	// Buckets holds the per-bucket (not cumulative) counts; the last is +Inf.
	Buckets [NumBuckets + 1]uint64
	// Count is the number of observations.
	Count uint64
	// Sum is the total of the observations, at microsecond precision.
	Sum time.Duration
}

// Sub returns the observations made between prev and s (s taken later).
func (s *HistogramSnapshot) Sub(prev *HistogramSnapshot) HistogramSnapshot {
	var d HistogramSnapshot
	for i := range s.Buckets {
		d.Buckets[i] = s.Buckets[i] - prev.Buckets[i]
	}
	d.Count = s.Count - prev.Count
	d.Sum = s.Sum - prev.Sum
	return d
}

// Add adds the observations of o to s, to total snapshots of several
// histograms with the same bounds.
func (s *HistogramSnapshot) Add(o *HistogramSnapshot) {
	for i := range s.Buckets {
		s.Buckets[i] += o.Buckets[i]
	}
	s.Count += o.Count
	s.Sum += o.Sum
}

// Quantile estimates the q-quantile (0 <= q <= 1) by linear interpolation
// inside the bucket that holds it. It returns 0 for an empty snapshot and the
// largest bound (1h) when the quantile falls in the +Inf bucket.
func (s *HistogramSnapshot) Quantile(q float64) time.Duration {
	var total uint64
	for _, n := range s.Buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var cum uint64
	for i, n := range s.Buckets {
		if n == 0 {
			continue
		}
		if float64(cum+n) >= rank {
			if i == NumBuckets {
				return bounds[NumBuckets-1]
			}
			var lower time.Duration
			if i > 0 {
				lower = bounds[i-1]
			}
			frac := (rank - float64(cum)) / float64(n)
			return lower + time.Duration(frac*float64(bounds[i]-lower))
		}
		cum += n
	}
	return bounds[NumBuckets-1]
}

// Mean returns the average observation, or 0 when there is none.
func (s *HistogramSnapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}
