package localrun

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// deliveries counts, per message ID, the pushes the function answered 2xx.
type deliveries struct {
	mu sync.Mutex
	ok map[string]int // guarded by mu
}

func (d *deliveries) observe(del pushbridge.Delivery) {
	if del.Err != nil || del.Status < 200 || del.Status > 299 {
		return
	}
	d.mu.Lock()
	d.ok[del.MessageID]++
	d.mu.Unlock()
}

// TestChaosConvergence pushes 50,000 changes over 4,500 keys through the
// bridge with ordering off, 20% duplicate deliveries, random delays and
// reordering, 1% malformed messages, a crash and restart of the function
// and of Redis mid-stream, and then checks that the cache converged:
// every key equals the generator's final state, every malformed message is
// parked, and no message was lost.
//
// Accounting: the function's metrics restart from zero with its process, so
// before killing it the bridge is paused until no push is in flight, the
// metrics are scraped, and the sums of each lifetime's last scrape are
// compared with the bridge's own count of 2xx answers (its Observe hook).
// Every published message must have at least one 2xx answer, the function
// must have counted exactly as many non-failed outcomes as there were 2xx
// answers, and those are the published messages plus the duplicates that
// got a 2xx.
func TestChaosConvergence(t *testing.T) {
	const (
		changes = 50000
		prefix  = "chaos:"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	began := time.Now()
	dir := t.TempDir()

	// Redis persists to an append-only file, so a crash and restart keep
	// every acknowledged write, as a managed Redis with persistence or a
	// replica failover does: without it a restart empties the cache, a
	// different failure (cache loss) that no delivery order can repair.
	rs := testredis.StartDurable(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()

	bin, err := BuildFunction(ctx, dir)
	require.NoError(t, err)
	gen := changegen.New(changegen.Options{Seed: 42, Keys: 1500})
	configPath := filepath.Join(dir, "cache.yaml")
	require.NoError(t, os.WriteFile(configPath, gen.CacheConfig(prefix), 0o644))
	port, err := FreePort()
	require.NoError(t, err)
	logFile, err := os.Create(filepath.Join(dir, "function.log"))
	require.NoError(t, err)
	defer logFile.Close()
	fn := &Function{Bin: bin, Port: port, Output: logFile, Env: []string{
		"REDIS_URL=redis://" + rs.Addr() + "/0", "CACHE_CONFIG=" + configPath, "SUMMARY_INTERVAL=1h",
	}}
	require.NoError(t, fn.Start(ctx))
	defer fn.Kill()

	ps, err := pushbridge.NewPubSub(ctx, "local")
	require.NoError(t, err)
	defer ps.Close()
	seen := &deliveries{ok: map[string]int{}}
	bridge, err := pushbridge.New(ctx, pushbridge.Config{
		PubSub: ps, Topics: gen.Topics(), Endpoint: fn.URL(), Concurrency: 16,
		MaxDeliveryAttempts: 30, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Faults: pushbridge.Faults{Duplicate: 0.2, DuplicateDelay: 300 * time.Millisecond,
			MaxDelay: 5 * time.Millisecond, Shuffle: true},
		Observe: seen.observe,
		Seed:    7,
	})
	require.NoError(t, err)
	bctx, stopBridge := context.WithCancel(ctx)
	bridgeDone := make(chan struct{})
	go func() {
		defer close(bridgeDone)
		assert.NoError(t, bridge.Run(bctx))
	}()
	defer func() { stopBridge(); <-bridgeDone }()

	var publishedChanges atomic.Int64
	type result struct {
		p   Produced
		err error
	}
	produced := make(chan result, 1)
	go func() {
		p, err := Produce(ctx, gen, ps, func() int64 { return bridge.Stats().Pending }, ProduceOptions{
			Events: changes, Malformed: 0.01, MaxBacklog: 300,
			Published: func(n int) { publishedChanges.Store(int64(n)) },
		})
		produced <- result{p, err}
	}()
	reached := func(n int64) func() bool { return func() bool { return publishedChanges.Load() >= n } }

	// Redis crashes mid-stream and comes back with its append-only file.
	// It stays down until deliveries have failed for it (the function's Redis
	// client retries briefly before answering 503).
	require.Eventually(t, reached(changes*3/10), 90*time.Second, 5*time.Millisecond)
	retried := bridge.Stats().Retried
	rs.Kill()
	require.Eventually(t, func() bool { return bridge.Stats().Retried > retried }, 30*time.Second, 5*time.Millisecond,
		"no delivery failed while Redis was down")
	rs.Restart()

	// The function crashes mid-stream and restarts on the same port.
	require.Eventually(t, reached(changes*6/10), 90*time.Second, 5*time.Millisecond)
	client := &http.Client{Timeout: 10 * time.Second}
	bridge.Pause()
	firstLife, err := Scrape(ctx, client, fn.URL())
	require.NoError(t, err)
	require.NoError(t, fn.Kill())
	bridge.Resume()
	require.NoError(t, fn.Start(ctx))

	res := <-produced
	require.NoError(t, res.err)
	require.Equal(t, changes, res.p.Changes)
	require.Eventually(t, bridge.Idle, 90*time.Second, 10*time.Millisecond, "backlog never drained: %+v", bridge.Stats())
	bridge.Pause() // nothing in flight: the last scrape is complete
	lastLife, err := Scrape(ctx, client, fn.URL())
	require.NoError(t, err)
	bridge.Resume()
	totals := firstLife.Plus(lastLife)
	st := bridge.Stats()
	t.Logf("%d changes + %d malformed in %v; bridge %+v; function outcomes %v",
		res.p.Changes, res.p.Malformed, time.Since(began).Round(time.Millisecond), st, totals.Outcomes)

	// Nothing lost: every published message got a 2xx, none was dead-lettered.
	published := int64(res.p.Changes + res.p.Malformed)
	assert.Equal(t, published, st.Published)
	assert.Zero(t, st.DeadLettered)
	assert.Zero(t, st.Pending)
	assert.Equal(t, st.Acked+st.Retried+st.Duplicates, st.Delivered, "delivered = first deliveries + retries + duplicates")
	seen.mu.Lock()
	okIDs, okTotal := len(seen.ok), 0
	for _, n := range seen.ok {
		okTotal += n
	}
	seen.mu.Unlock()
	assert.Equal(t, int(published), okIDs, "every published message answered 2xx at least once")
	dup2xx := okTotal - okIDs
	assert.Positive(t, dup2xx)
	assert.Positive(t, st.Retried, "the restarts made deliveries fail and retry")
	assert.Equal(t, uint64(okTotal), totals.Handled(), "the function counted every 2xx answer once")
	assert.Equal(t, uint64(published), totals.Handled()-uint64(dup2xx),
		"published = applied + deleted + stale + ignored + rejected, less duplicates")
	assert.LessOrEqual(t, totals.Outcomes[cdc.OutcomeFailed], uint64(st.Retried))

	// Every malformed message is parked, and only those.
	stream := redisstore.RejectedStreamKey(prefix)
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	require.NoError(t, err)
	parkedIDs := map[string]bool{}
	for _, e := range entries {
		id, _ := e.Values["message_id"].(string)
		parkedIDs[id] = true
	}
	assert.Equal(t, res.p.MalformedIDs, parkedIDs, "the parked messages are exactly the malformed ones")
	rejected := totals.Outcomes[cdc.OutcomeRejected]
	parkedDuplicates := 0
	seen.mu.Lock()
	for id := range res.p.MalformedIDs {
		parkedDuplicates += seen.ok[id] - 1
	}
	seen.mu.Unlock()
	assert.Equal(t, uint64(res.p.Malformed+parkedDuplicates), rejected, "each 2xx for a malformed message parked it")
	// A park whose reply Redis lost in its crash is retried and parked again.
	assert.GreaterOrEqual(t, uint64(len(entries)), rejected)
	assert.LessOrEqual(t, uint64(len(entries)), rejected+totals.Outcomes[cdc.OutcomeFailed])

	// The cache converged on the generator's final state.
	expected := gen.Expected()
	verdict, err := Verify(ctx, rdb, prefix, expected)
	require.NoError(t, err)
	assert.Equal(t, len(expected), verdict.Checked)
	assert.True(t, verdict.OK(), "missing=%d stale=%d resurrected=%d: %+v",
		verdict.Missing, verdict.Stale, verdict.Resurrected, verdict.Mismatches)
	var deletes int
	var newest cdc.Version
	for _, e := range expected {
		if e.Deleted {
			deletes++
		}
		newest = max(newest, e.Version)
	}
	assert.Greater(t, deletes, 100, "the run ends with deleted rows to protect")

	// A graceful stop flushes the checkpoint at the newest change.
	require.NoError(t, fn.Stop())
	cp, err := redisstore.ReadCheckpoint(ctx, rdb, prefix, "inventory.customers")
	require.NoError(t, err)
	assert.Equal(t, "dbserver1", cp.Server)
	assert.Equal(t, newest, cp.Version)
	if t.Failed() {
		logTail(t, filepath.Join(dir, "function.log"))
	}
}

func logTail(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	t.Logf("function log tail:\n%s", b)
}

func TestScrapeParsesFunctionMetrics(t *testing.T) {
	m := pipeline.NewMetrics()
	for i := range 10 {
		m.Table("inventory.customers").Outcomes[cdc.OutcomeApplied].Inc()
		m.Table("inventory.customers").PipelineLag.Observe(time.Duration(i+1) * time.Millisecond)
	}
	m.Table("inventory.order_items").Outcomes[cdc.OutcomeStale].Add(3)
	m.Table("inventory.order_items").PipelineLag.Observe(time.Second)
	m.Table("").Outcomes[cdc.OutcomeRejected].Add(2)
	m.Table("").Outcomes[cdc.OutcomeFailed].Add(5)
	srv := newMetricsServer(t, m)

	got, err := Scrape(context.Background(), http.DefaultClient, srv+"/")
	require.NoError(t, err)
	want := m.Total()
	assert.Equal(t, want.Outcomes, got.Outcomes)
	// /metrics publishes every ExposeEvery-th bound: the cumulative counts
	// at those agree exactly, and a quantile lies in the right published
	// bucket (within its 1.73x width of the in-process one).
	var wantCum, gotCum uint64
	for i := range want.PipelineLag.Buckets {
		wantCum += want.PipelineLag.Buckets[i]
		gotCum += got.Lag.Buckets[i]
		if i == metrics.NumBuckets || metrics.Exposed(i) {
			assert.Equal(t, wantCum, gotCum, "cumulative count at bucket %d", i)
		}
	}
	assert.Equal(t, want.PipelineLag.Count, got.Lag.Count)
	for _, q := range []float64{0.5, 0.9} {
		w, g := want.PipelineLag.Quantile(q), got.Lag.Quantile(q)
		assert.InDelta(t, 1, float64(g)/float64(w), 0.73, "q%v: %v vs %v", q, g, w)
	}
	assert.Equal(t, uint64(15), got.Handled(), "failed is not handled")
	assert.Equal(t, uint64(10), got.Applied())

	both := got.Plus(got)
	assert.Equal(t, 2*got.Outcomes[cdc.OutcomeStale], both.Outcomes[cdc.OutcomeStale])
	assert.Equal(t, got, both.Minus(got))

	_, err = Scrape(context.Background(), http.DefaultClient, srv+"/nothing/")
	assert.ErrorContains(t, err, "404")
}

func newMetricsServer(t *testing.T, m *pipeline.Metrics) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		if err := m.WritePrometheus(w); err != nil {
			t.Error(err)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
