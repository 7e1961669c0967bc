package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func bodies(n int) [][]byte {
	b := make([][]byte, n)
	for i := range b {
		b[i] = []byte(`{"n":` + string(rune('0'+i%10)) + `}`)
	}
	return b
}

// countingServer serves h and counts the connections it accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &accepted
}

func TestClosedLoopSendsEveryBodyOnce(t *testing.T) {
	var got, inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		b, _ := io.ReadAll(r.Body)
		if !strings.HasPrefix(string(b), `{"n":`) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if got.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(200), Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || got.Load() != 200 {
		t.Fatalf("sent %d, server got %d", res.Sent, got.Load())
	}
	if res.Status[204] != 180 || res.Status[503] != 20 || res.OK() != 180 || res.StatusString() != "204:180,503:20" {
		t.Fatalf("status %v", res.Status)
	}
	if peak.Load() > 4 {
		t.Fatalf("%d requests in flight at concurrency 4", peak.Load())
	}
	if res.EventsPerSec() <= 0 || res.Quantile(0.5) <= 0 || res.Quantile(0.99) < res.Quantile(0.5) {
		t.Fatalf("rate %v p50 %v p99 %v", res.EventsPerSec(), res.Quantile(0.5), res.Quantile(0.99))
	}
}

// fakeClock is time that moves only when a test's server works (advance)
// or the load sleeps: schedules and latencies become counts of work.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time // protected by mu
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) clock() clock { return clock{now: c.now, sleep: c.advance} }

// The closed loop stops sending at Duration: each request takes 2 ms of the
// server's (fake) time, so two workers fit about 100 in 100 ms.
func TestClosedLoopStopsAtDuration(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clk.advance(time.Millisecond) // 2 ms of work shared by 2 workers
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(1000), Concurrency: 2,
		Duration: 100 * time.Millisecond, clock: clk.clock()})
	if err != nil {
		t.Fatal(err)
	}
	// A worker checks the deadline before each send: 100 sends reach it,
	// and the other worker's send in flight then may add one.
	if res.Sent < 100 || res.Sent > 101 || res.OK() != res.Sent {
		t.Fatalf("sent %d, ok %d, want 100 or 101", res.Sent, res.OK())
	}
}

// An open loop offered more than the server can take must show the queueing
// in its latency: with one request at a time and 5 ms each, 40 sends offered
// in 40 ms finish about 200 ms after the first was due.
func TestOpenLoopCountsQueueing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		clk.advance(5 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(40), Rate: 1000, MaxInFlight: 1, clock: clk.clock()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 40 || res.OK() != 40 || accepted.Load() != 1 {
		t.Fatalf("sent %d ok %d over %d connections", res.Sent, res.OK(), accepted.Load())
	}
	// The last send was due at 39 ms but ran after 39 earlier 5 ms
	// requests: it finished at 200 ms, 161 ms late.
	if max := res.Quantile(1); max < 150*time.Millisecond {
		t.Fatalf("slowest %v hides the queueing", max)
	}
}

func TestOpenLoopKeepsOfferedRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(10000), Rate: 2000, Duration: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 2000/s for 250 ms is 500 sends, scheduled by the clock.
	if res.Sent != 500 {
		t.Fatalf("sent %d, want 500", res.Sent)
	}
}

func TestLoadRejectsBadConfig(t *testing.T) {
	for _, cfg := range []LoadConfig{
		{URL: "http://127.0.0.1:1", Bodies: bodies(1)},
		{URL: "http://127.0.0.1:1", Bodies: bodies(1), Concurrency: 1, Rate: 1},
		{URL: "http://127.0.0.1:1", Concurrency: 1},
		{URL: "https://127.0.0.1:1/", Bodies: bodies(1), Concurrency: 1},
		{URL: "127.0.0.1:1", Bodies: bodies(1), Concurrency: 1},
		{URL: "http://127.0.0.1:1/%zz", Bodies: bodies(1), Concurrency: 1},
	} {
		if _, err := Load(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestTransportErrorsCountAsZero(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	res, err := Load(context.Background(), LoadConfig{URL: url, Bodies: bodies(3), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[0] != 3 || res.FirstErr == nil {
		t.Fatalf("status %v err %v", res.Status, res.FirstErr)
	}
}

// A server that hangs up mid-run costs the request it was answering, not
// the ones after: the next request dials again.
func TestTransportErrorRedials(t *testing.T) {
	var got atomic.Int64
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got.Add(1)%3 == 0 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(30), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Requests 3, 6, ... 30 are hung up on; 4, 7, ... 28 open a new connection.
	if res.Status[0] != 10 || res.Status[204] != 20 || res.FirstErr == nil || accepted.Load() != 10 {
		t.Fatalf("status %v err %v over %d connections", res.Status, res.FirstErr, accepted.Load())
	}
}

func TestConnectionCloseRedials(t *testing.T) {
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(20), Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[204] != 20 || res.FirstErr != nil || accepted.Load() != 20 {
		t.Fatalf("status %v err %v over %d connections", res.Status, res.FirstErr, accepted.Load())
	}
}

// Every kind of answer is read whole, so the connection carries the next
// request: sized and chunked bodies, an informational answer before the
// final one, an error with a body.
func TestAnswersKeepTheConnection(t *testing.T) {
	var got atomic.Int64
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch got.Add(1) % 5 {
		case 0:
			w.WriteHeader(http.StatusNoContent)
		case 1:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		case 2:
			// A flush before the end, with no length set: chunked.
			_, _ = io.WriteString(w, strings.Repeat("a", 5000))
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "end")
		case 3:
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
		case 4:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(100), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusString() != "200:60,204:20,503:20" || accepted.Load() != 1 {
		t.Fatalf("status %v err %v over %d connections", res.StatusString(), res.FirstErr, accepted.Load())
	}
}

// The open loop's pool hands a send to the most recently idle connection
// and opens one only when every connection is busy, so a server that keeps
// up sees a few connections, not one per request.
func TestPoolReusesIdleConnections(t *testing.T) {
	const burst = 3
	var arrived atomic.Int64
	met := make(chan struct{})
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n := arrived.Add(1); n < burst {
			<-met // the burst's requests are in flight together
		} else if n == burst {
			close(met)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	tg, err := parseTarget(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	r := &runner{target: tg, bodies: bodies(n), clock: clock{}.orWall(), lat: make([]time.Duration, n), code: make([]int32, n)}
	p := &pool{r: r, max: 10}
	p.freed.L = &p.mu
	ctx := context.Background()
	settle := func() { // until every worker is idle again
		p.mu.Lock()
		for len(p.idle) < len(p.all) {
			p.freed.Wait()
		}
		p.mu.Unlock()
	}
	for i := range burst {
		p.get(ctx).jobs <- job{i, r.clock.now()}
	}
	settle()
	for i := burst; i < n; i++ {
		p.get(ctx).jobs <- job{i, r.clock.now()}
		settle()
	}
	p.close()
	if got := accepted.Load(); got != burst {
		t.Fatalf("%d sends over %d connections, want the burst's %d", n, got, burst)
	}
	for i, c := range r.code {
		if c != http.StatusNoContent {
			t.Fatalf("send %d: status %d", i, c)
		}
	}
}
