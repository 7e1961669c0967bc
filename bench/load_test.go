package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestClosedLoopStopsAtDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond) // the server's work, not synchronisation
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(100000), Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent == 0 || res.Sent >= 100000 || res.OK() != res.Sent {
		t.Fatalf("sent %d, ok %d", res.Sent, res.OK())
	}
}

// An open loop offered more than the server can take must show the queueing
// in its latency: with one request at a time and 5 ms each, 40 sends offered
// in 40 ms finish about 200 ms after the first was due.
func TestOpenLoopCountsQueueing(t *testing.T) {
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(40), Rate: 1000, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 40 || res.OK() != 40 || accepted.Load() != 1 {
		t.Fatalf("sent %d ok %d over %d connections", res.Sent, res.OK(), accepted.Load())
	}
	// The last send was due at 39 ms but ran after 39 earlier 5 ms requests.
	if p99 := res.Quantile(0.99); p99 < 100*time.Millisecond {
		t.Fatalf("p99 %v hides the queueing", p99)
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

// The open loop takes the most recently idle connection, so a server that
// keeps up sees a few connections, not one per request.
func TestOpenLoopReusesConnections(t *testing.T) {
	srv, accepted := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	res, err := Load(context.Background(), LoadConfig{URL: srv.URL, Bodies: bodies(600), Rate: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 600 || res.OK() != 600 || accepted.Load() > 60 {
		t.Fatalf("sent %d ok %d over %d connections", res.Sent, res.OK(), accepted.Load())
	}
	t.Logf("%d requests over %d connections", res.Sent, accepted.Load())
}
