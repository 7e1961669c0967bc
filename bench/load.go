package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
	URL         string        // http://host[:port]/path, where each body is POSTed
	Bodies      [][]byte      // request bodies, generated before the run; sent in order, each once
	Concurrency int           // closed loop: this many requests in flight, each sent when the last returned
	Rate        float64       // open loop: events per second, sent on a fixed schedule
	Duration    time.Duration // stop sending after this long (0: until Bodies run out)
	// MaxInFlight bounds the open loop's concurrent requests, and so its
	// connections (default 1000); a send that finds them all busy waits, and
	// the wait counts as latency.
	MaxInFlight int

	clock clock // zero: the wall clock; tests drive their own
}

// clock is the time the load runs on: schedules, deadlines and latencies.
type clock struct {
	now   func() time.Time
	sleep func(time.Duration)
}

func (c clock) orWall() clock {
	if c.now == nil {
		return clock{now: time.Now, sleep: time.Sleep}
	}
	return c
}

func (c clock) since(t time.Time) time.Duration { return c.now().Sub(t) }

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

// Load runs cfg against cfg.URL and returns what it measured. It speaks
// HTTP/1.1 itself over keep-alive connections it dials and closes: one
// write per request and net/http's response parser, about half the CPU per
// request of http.Client, which would be taken from the server under test
// on the same machine. Cancelling ctx stops sending; requests in flight
// finish (each within requestTimeout).
func Load(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if len(cfg.Bodies) == 0 {
		return LoadResult{}, errors.New("bench: no request bodies")
	}
	if (cfg.Concurrency > 0) == (cfg.Rate > 0) {
		return LoadResult{}, errors.New("bench: set exactly one of concurrency and rate")
	}
	t, err := parseTarget(cfg.URL)
	if err != nil {
		return LoadResult{}, err
	}
	r := &runner{target: t, bodies: cfg.Bodies, clock: cfg.clock.orWall(),
		lat: make([]time.Duration, len(cfg.Bodies)), code: make([]int32, len(cfg.Bodies))}
	start := r.clock.now()
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
	res := LoadResult{Sent: sent, Elapsed: r.clock.since(start), Status: map[int]int{}, FirstErr: r.firstErr()}
	for i := range sent {
		res.Status[int(r.code[i])]++
	}
	res.lat = slices.Clone(r.lat[:sent])
	slices.Sort(res.lat)
	return res, nil
}

const (
	dialTimeout = 5 * time.Second
	// requestTimeout bounds one request's write and answer, as the
	// http.Client this replaced did.
	requestTimeout = 30 * time.Second
)

// target is where requests go: the address to dial and each request's head
// up to its Content-Length value.
type target struct {
	addr string
	head []byte
}

// parseTarget reads an http:// URL: its host:port is dialled and sent as
// Host, its path (and query) requested.
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("bench: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return target{}, fmt.Errorf("bench: URL %q: want http://host[:port]/path", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	return target{addr: addr, head: []byte(head)}, nil
}

// conn is one keep-alive connection. nc is nil before the first request and
// after a transport error or a "Connection: close" answer, so the next
// request dials again.
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	req []byte // the request being written; reused, so sized for the largest body
}

// do posts body over c and returns the answer's status code.
func (c *conn) do(ctx context.Context, t *target, body []byte) (int, error) {
	if c.nc == nil {
		d := net.Dialer{Timeout: dialTimeout}
		nc, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return 0, err
		}
		c.nc = nc
		if c.br == nil {
			c.br = bufio.NewReader(nc)
		} else {
			c.br.Reset(nc)
		}
	}
	code, keep, err := c.roundTrip(t, body)
	if err != nil || !keep {
		c.close()
	}
	return code, err
}

// roundTrip writes the request in one Write and reads the whole answer, so
// the connection is ready for the next request if keep is true.
func (c *conn) roundTrip(t *target, body []byte) (code int, keep bool, err error) {
	if err := c.nc.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return 0, false, err
	}
	c.req = append(c.req[:0], t.head...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(append(c.req, "\r\n\r\n"...), body...)
	if _, err := c.nc.Write(c.req); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	// Informational (1xx) answers come before the final one.
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(c.br, nil)
	}
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, !resp.Close, nil
}

func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// runner holds one run's shared state; lat and code are written once per
// body index by the one goroutine that sent it, read after all are done.
type runner struct {
	target target
	bodies [][]byte
	clock  clock
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

// closed keeps c requests in flight until the bodies or the time run out:
// c workers, each sending over its own connection.
func (r *runner) closed(ctx context.Context, c int, deadline time.Time) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var cn conn
			defer cn.close()
			for ctx.Err() == nil && (deadline.IsZero() || r.clock.now().Before(deadline)) {
				i := int(next.Add(1) - 1)
				if i >= len(r.bodies) {
					return
				}
				t0 := r.clock.now()
				r.send(ctx, &cn, i)
				r.lat[i] = r.clock.since(t0)
			}
		})
	}
	wg.Wait()
	return min(int(next.Load()), len(r.bodies))
}

// open sends body i at start + i/rate, handing each send to a connection's
// worker goroutine (see pool). Latency runs from the scheduled time, so time
// spent waiting for a free connection (queueing in the server) is counted,
// not omitted.
func (r *runner) open(ctx context.Context, rate float64, maxConns int, start, deadline time.Time) int {
	p := &pool{r: r, max: maxConns}
	p.freed.L = &p.mu
	interval := time.Duration(float64(time.Second) / rate)
	n := 0
	for n < len(r.bodies) && ctx.Err() == nil {
		due := start.Add(time.Duration(n) * interval)
		if !deadline.IsZero() && !due.Before(deadline) {
			break
		}
		if d := due.Sub(r.clock.now()); d > 0 {
			r.clock.sleep(d)
		}
		// Release every send that is due by now in one go, so a late wake-up
		// does not lower the offered rate.
		now := r.clock.now()
		for n < len(r.bodies) {
			due := start.Add(time.Duration(n) * interval)
			if due.After(now) || (!deadline.IsZero() && !due.Before(deadline)) {
				break
			}
			// Waiting here for a free connection delays the later sends too,
			// in order; their latency still runs from their scheduled time.
			p.get(ctx).jobs <- job{n, due}
			n++
		}
	}
	p.close()
	return n
}

// job is one scheduled send: body i, due at due.
type job struct {
	i   int
	due time.Time
}

// worker sends the jobs it is handed, one at a time, over its own
// connection. A goroutine per connection rather than per send: the
// goroutine's stack is grown once, not for every request.
type worker struct {
	c    conn
	jobs chan job // buffered 1: handed a job only when idle, so never blocks
}

// pool is the open loop's workers. Idle ones are kept on a stack, the most
// recently used on top, so a few hot connections carry the load (as in an
// HTTP client's idle pool) and a new one is started only when all are busy.
type pool struct {
	r   *runner
	max int

	mu    sync.Mutex
	freed sync.Cond // signalled when a worker becomes idle
	idle  []*worker
	all   []*worker
	wg    sync.WaitGroup
}

// get returns the most recently idle worker, or a new one if none is idle
// and fewer than max exist, or waits for one to become idle.
func (p *pool) get(ctx context.Context) *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) == 0 && len(p.all) >= p.max {
		p.freed.Wait()
	}
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return w
	}
	w := &worker{jobs: make(chan job, 1)}
	p.all = append(p.all, w)
	p.wg.Go(func() {
		defer w.c.close()
		for j := range w.jobs {
			p.r.send(ctx, &w.c, j.i)
			p.r.lat[j.i] = p.r.clock.since(j.due)
			p.mu.Lock()
			p.idle = append(p.idle, w)
			p.mu.Unlock()
			p.freed.Signal()
		}
	})
	return w
}

// close lets every worker finish its job and close its connection.
func (p *pool) close() {
	p.mu.Lock()
	for _, w := range p.all {
		close(w.jobs)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// send posts body i over c and records its status (0: transport error).
func (r *runner) send(ctx context.Context, c *conn, i int) {
	code, err := c.do(ctx, &r.target, r.bodies[i])
	if err != nil {
		r.fail(i, err)
		return
	}
	r.code[i] = int32(code)
}

func (r *runner) fail(i int, err error) {
	r.code[i] = 0
	r.mu.Lock()
	if r.err == nil {
		r.err = fmt.Errorf("request %d: %w", i, err)
	}
	r.mu.Unlock()
}
