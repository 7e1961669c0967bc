package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig is one load run. Exactly one of Concurrency (closed loop) and
// Rate (open loop) is set.
type LoadConfig struct {
	URL         string
	Bodies      [][]byte      // request bodies, generated before the run; sent in order, each once
	Concurrency int           // closed loop: this many requests in flight, each sent when the last returned
	Rate        float64       // open loop: events per second, sent on a fixed schedule
	Duration    time.Duration // stop sending after this long (0: until Bodies run out)
	// MaxInFlight bounds the open loop's concurrent requests (default 1000);
	// a send that finds them all busy waits, and the wait counts as latency.
	MaxInFlight int
}

// LoadResult is what a run measured.
type LoadResult struct {
	Sent     int
	Elapsed  time.Duration // first send to last answer
	Status   map[int]int   // HTTP status -> count; 0 counts transport errors
	FirstErr error         // the first transport error, if any
	lat      []time.Duration
}

// EventsPerSec is the completed request rate.
func (r LoadResult) EventsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0..1) of request latency.
func (r LoadResult) Quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// OK counts 2xx answers.
func (r LoadResult) OK() int {
	n := 0
	for code, c := range r.Status {
		if code >= 200 && code < 300 {
			n += c
		}
	}
	return n
}

// StatusString lists status counts as "200:19990,503:10" in code order.
func (r LoadResult) StatusString() string {
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c) + ":" + strconv.Itoa(r.Status[c])
	}
	return strings.Join(parts, ",")
}

// NewClient returns an HTTP client for load: keep-alive, enough idle
// connections per host for conns concurrent requests, no compression.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Load runs cfg against cfg.URL with client and returns what it measured.
// Cancelling ctx stops sending; requests in flight finish.
func Load(ctx context.Context, client *http.Client, cfg LoadConfig) (LoadResult, error) {
	if len(cfg.Bodies) == 0 {
		return LoadResult{}, errors.New("bench: no request bodies")
	}
	if (cfg.Concurrency > 0) == (cfg.Rate > 0) {
		return LoadResult{}, errors.New("bench: set exactly one of concurrency and rate")
	}
	r := &runner{client: client, url: cfg.URL, bodies: cfg.Bodies,
		lat: make([]time.Duration, len(cfg.Bodies)), code: make([]int32, len(cfg.Bodies))}
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	var sent int
	if cfg.Concurrency > 0 {
		sent = r.closed(ctx, cfg.Concurrency, deadline)
	} else {
		inflight := cfg.MaxInFlight
		if inflight <= 0 {
			inflight = 1000
		}
		sent = r.open(ctx, cfg.Rate, inflight, start, deadline)
	}
	res := LoadResult{Sent: sent, Elapsed: time.Since(start), Status: map[int]int{}, FirstErr: r.firstErr()}
	for i := range sent {
		res.Status[int(r.code[i])]++
	}
	res.lat = slices.Clone(r.lat[:sent])
	slices.Sort(res.lat)
	return res, nil
}

// runner holds one run's shared state; lat and code are written once per
// body index by the one goroutine that sent it, read after all are done.
type runner struct {
	client *http.Client
	url    string
	bodies [][]byte
	lat    []time.Duration
	code   []int32

	mu  sync.Mutex // guards err
	err error
}

func (r *runner) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// closed keeps c requests in flight until the bodies or the time run out.
func (r *runner) closed(ctx context.Context, c int, deadline time.Time) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				i := int(next.Add(1) - 1)
				if i >= len(r.bodies) {
					return
				}
				t0 := time.Now()
				r.send(ctx, i)
				r.lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return min(int(next.Load()), len(r.bodies))
}

// open sends body i at start + i/rate. Workers take scheduled sends from a
// queue; latency runs from the scheduled time, so time spent waiting for a
// free worker (queueing in the server) is counted, not omitted.
func (r *runner) open(ctx context.Context, rate float64, workers int, start, deadline time.Time) int {
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, len(r.bodies))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				r.send(ctx, j.i)
				r.lat[j.i] = time.Since(j.due)
			}
		})
	}
	interval := time.Duration(float64(time.Second) / rate)
	n := 0
	for n < len(r.bodies) && ctx.Err() == nil {
		due := start.Add(time.Duration(n) * interval)
		if !deadline.IsZero() && !due.Before(deadline) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		// Release every send that is due by now in one go, so a late wake-up
		// does not lower the offered rate.
		now := time.Now()
		for n < len(r.bodies) {
			due := start.Add(time.Duration(n) * interval)
			if due.After(now) || (!deadline.IsZero() && !due.Before(deadline)) {
				break
			}
			jobs <- job{n, due}
			n++
		}
	}
	close(jobs)
	wg.Wait()
	return n
}

// send posts body i and records its status (0: transport error).
func (r *runner) send(ctx context.Context, i int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.bodies[i]))
	if err != nil {
		r.fail(i, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		r.fail(i, err)
		return
	}
	// Drain so the connection is reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.code[i] = int32(resp.StatusCode)
}

func (r *runner) fail(i int, err error) {
	r.code[i] = 0
	r.mu.Lock()
	if r.err == nil {
		r.err = fmt.Errorf("request %d: %w", i, err)
	}
	r.mu.Unlock()
}
