package bench

import (
	"context"
	"io"
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

	res, err := Load(context.Background(), NewClient(4), LoadConfig{URL: srv.URL, Bodies: bodies(200), Concurrency: 4})
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
	res, err := Load(context.Background(), NewClient(2), LoadConfig{URL: srv.URL, Bodies: bodies(100000), Concurrency: 2, Duration: 100 * time.Millisecond})
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Load(context.Background(), NewClient(1), LoadConfig{URL: srv.URL, Bodies: bodies(40), Rate: 1000, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 40 || res.OK() != 40 {
		t.Fatalf("sent %d ok %d", res.Sent, res.OK())
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
	res, err := Load(context.Background(), NewClient(50), LoadConfig{URL: srv.URL, Bodies: bodies(10000), Rate: 2000, Duration: 250 * time.Millisecond})
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
	} {
		if _, err := Load(context.Background(), NewClient(1), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestTransportErrorsCountAsZero(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	res, err := Load(context.Background(), NewClient(1), LoadConfig{URL: url, Bodies: bodies(3), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[0] != 3 || res.FirstErr == nil {
		t.Fatalf("status %v err %v", res.Status, res.FirstErr)
	}
}
