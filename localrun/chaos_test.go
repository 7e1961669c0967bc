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
	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpull"
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

// TestChaosConvergence runs the convergence test through each delivery: a
// stream of changes with duplicate deliveries, reordering and 1% malformed
// messages, a crash and restart of Redis and of the process that applies
// (the push function, the pull worker) mid-stream, after which the cache
// must equal the generator's final state (no missing, stale or resurrected
// key), every malformed message must be parked, and every message must be
// accounted for once (pushChaos, pullChaos, kafkaChaos).
func TestChaosConvergence(t *testing.T) {
	t.Run("push", func(t *testing.T) { runChaos(t, 50000, 1500, pushChaos) })
	t.Run("pull", func(t *testing.T) { runChaos(t, 5000, 300, pullChaos) })
	t.Run("kafka", func(t *testing.T) { runChaos(t, 5000, 300, kafkaChaos) })
}

// chaosRig is what every delivery's run shares.
type chaosRig struct {
	ctx    context.Context
	dir    string
	prefix string
	// rs persists to an append-only file, so a crash and restart keep
	// every acknowledged write, as a managed Redis with persistence or a
	// replica failover does: without it a restart empties the cache, a
	// different failure (cache loss) that no delivery order can repair.
	rs  *testredis.Server
	rdb *redis.Client
	gen *changegen.Generator
	// env is the process's cache settings; log its output.
	env []string
	log *os.File
}

// chaosDelivery is one transport under the convergence test.
type chaosDelivery struct {
	// publisher takes what the producer publishes; pending is the backlog,
	// idle reports it drained (and no injected fault still to come).
	publisher Publisher
	pending   func() int64
	idle      func() bool
	// failures counts failed deliveries so far: Redis stays down until it
	// grows.
	failures func() int64
	// crash kills the process mid-stream and starts it again.
	crash func()
	// account checks the delivery's own books once the backlog drained;
	// parked is how many entries the reject stream holds.
	account func(p Produced, parked int)
	// stop ends the process gracefully (it flushes the checkpoint).
	stop func() error
	// sent, when set, sees every message the producer published, with its
	// ID; parkedAs, when set, maps a parked message's ID to the ID the
	// producer saw (a message the queue delivered under another ID).
	sent     func(m changegen.Message, id string)
	parkedAs func(id string) string
}

// runChaos publishes changes over keys keys per table through the delivery
// start builds, with the faults above, and checks that the cache converged.
func runChaos(t *testing.T, changes, keys int, start func(*testing.T, *chaosRig) chaosDelivery) {
	// Generous: the push run took 110 s of a loaded machine (2 cores, shared); the steps wait on conditions.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	rig := &chaosRig{ctx: ctx, dir: t.TempDir(), prefix: "chaos:", rs: testredis.StartDurable(t),
		gen: changegen.New(changegen.Options{Seed: 42, Keys: keys})}
	rig.rdb = redis.NewClient(&redis.Options{Addr: rig.rs.Addr()})
	defer rig.rdb.Close()
	configPath := filepath.Join(rig.dir, "cache.yaml")
	require.NoError(t, os.WriteFile(configPath, rig.gen.CacheConfig(rig.prefix), 0o644))
	rig.env = []string{"REDIS_URL=redis://" + rig.rs.Addr() + "/0", "CACHE_CONFIG=" + configPath, "SUMMARY_INTERVAL=1h"}
	var err error
	rig.log, err = os.Create(filepath.Join(rig.dir, "process.log"))
	require.NoError(t, err)
	defer rig.log.Close()
	d := start(t, rig)

	var publishedChanges atomic.Int64
	type result struct {
		p   Produced
		err error
	}
	produced := make(chan result, 1)
	go func() {
		p, err := Produce(ctx, rig.gen, d.publisher, d.pending, ProduceOptions{
			Events: changes, Malformed: 0.01, MaxBacklog: 300,
			Published: func(n int) { publishedChanges.Store(int64(n)) },
			Sent:      d.sent,
		})
		produced <- result{p, err}
	}()
	reached := func(n int) func() bool { return func() bool { return publishedChanges.Load() >= int64(n) } }

	// Redis crashes mid-stream and comes back with its append-only file.
	// It stays down until deliveries have failed for it (the process's
	// Redis client retries briefly before giving up).
	require.Eventually(t, reached(changes*3/10), 90*time.Second, 5*time.Millisecond)
	failed := d.failures()
	rig.rs.Kill()
	require.Eventually(t, func() bool { return d.failures() > failed }, 30*time.Second, 5*time.Millisecond,
		"no delivery failed while Redis was down")
	rig.rs.Restart()

	// The process crashes mid-stream and restarts on the same port.
	require.Eventually(t, reached(changes*6/10), 90*time.Second, 5*time.Millisecond)
	d.crash()

	res := <-produced
	require.NoError(t, res.err)
	require.Equal(t, changes, res.p.Changes)
	require.Eventually(t, d.idle, 90*time.Second, 10*time.Millisecond, "backlog never drained: %d pending", d.pending())

	// Every malformed message is parked, and only those.
	stream := redisstore.RejectedStreamKey(rig.prefix)
	entries, err := rig.rdb.XRange(ctx, stream, "-", "+").Result()
	require.NoError(t, err)
	parkedIDs := map[string]bool{}
	for _, e := range entries {
		id, _ := e.Values["message_id"].(string)
		if d.parkedAs != nil {
			id = d.parkedAs(id)
		}
		parkedIDs[id] = true
	}
	assert.Equal(t, res.p.MalformedIDs, parkedIDs, "the parked messages are exactly the malformed ones")
	d.account(res.p, len(entries))
	t.Logf("%d changes + %d malformed in %v", res.p.Changes, res.p.Malformed, time.Since(began).Round(time.Millisecond))

	// The cache converged on the generator's final state.
	expected := rig.gen.Expected()
	verdict, err := Verify(ctx, rig.rdb, rig.prefix, expected)
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
	require.NoError(t, d.stop())
	cp, err := redisstore.ReadCheckpoint(ctx, rig.rdb, rig.prefix, "inventory.customers")
	require.NoError(t, err)
	assert.Equal(t, "dbserver1", cp.Server)
	assert.Equal(t, newest, cp.Version)
	if t.Failed() {
		logTail(t, rig.log.Name())
	}
}

// pushChaos is push delivery under the convergence test: the bridge with
// ordering off, 20% duplicate deliveries, random delays and reordering, in
// front of the push function.
//
// Accounting: the function's metrics restart from zero with its process, so
// before killing it the bridge is paused until no push is in flight, the
// metrics are scraped, and the sums of each lifetime's last scrape are
// compared with the bridge's own count of 2xx answers (its Observe hook).
// Every published message must have at least one 2xx answer, the function
// must have counted exactly as many non-failed outcomes as there were 2xx
// answers, and those are the published messages plus the duplicates that
// got a 2xx.
func pushChaos(t *testing.T, rig *chaosRig) chaosDelivery {
	ctx := rig.ctx
	bin, err := BuildFunction(ctx, rig.dir)
	require.NoError(t, err)
	port, err := FreePort()
	require.NoError(t, err)
	fn := &Function{Bin: bin, Port: port, Output: rig.log, Env: rig.env}
	require.NoError(t, fn.Start(ctx))
	t.Cleanup(func() { fn.Kill() })

	ps, err := pushbridge.NewPubSub(ctx, "local")
	require.NoError(t, err)
	t.Cleanup(func() { ps.Close() })
	seen := &deliveries{ok: map[string]int{}}
	bridge, err := pushbridge.New(ctx, pushbridge.Config{
		PubSub: ps, Topics: rig.gen.Topics(), Endpoint: fn.URL(), Concurrency: 16,
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
	t.Cleanup(func() { stopBridge(); <-bridgeDone })

	client := &http.Client{Timeout: 10 * time.Second}
	var firstLife Totals
	return chaosDelivery{
		publisher: ps,
		pending:   func() int64 { return bridge.Stats().Pending },
		idle:      bridge.Idle,
		failures:  func() int64 { return bridge.Stats().Retried },
		crash: func() {
			bridge.Pause()
			firstLife, err = Scrape(ctx, client, fn.URL())
			require.NoError(t, err)
			require.NoError(t, fn.Kill())
			bridge.Resume()
			require.NoError(t, fn.Start(ctx))
		},
		stop: fn.Stop,
		account: func(p Produced, parked int) {
			bridge.Pause() // nothing in flight: the last scrape is complete
			lastLife, err := Scrape(ctx, client, fn.URL())
			require.NoError(t, err)
			bridge.Resume()
			totals := firstLife.Plus(lastLife)
			st := bridge.Stats()
			t.Logf("bridge %+v; function outcomes %v", st, totals.Outcomes)

			// Nothing lost: every published message got a 2xx, none was dead-lettered.
			published := int64(p.Changes + p.Malformed)
			assert.Equal(t, published, st.Published)
			assert.Zero(t, st.DeadLettered)
			assert.Zero(t, st.Pending)
			assert.Equal(t, st.Acked+st.Retried+st.Duplicates, st.Delivered, "delivered = first deliveries + retries + duplicates")
			seen.mu.Lock()
			defer seen.mu.Unlock()
			okIDs, okTotal := len(seen.ok), 0
			for _, n := range seen.ok {
				okTotal += n
			}
			assert.Equal(t, int(published), okIDs, "every published message answered 2xx at least once")
			dup2xx := okTotal - okIDs
			assert.Positive(t, dup2xx)
			assert.Positive(t, st.Retried, "the restarts made deliveries fail and retry")
			assert.Equal(t, uint64(okTotal), totals.Handled(), "the function counted every 2xx answer once")
			assert.Equal(t, uint64(published), totals.Handled()-uint64(dup2xx),
				"published = applied + deleted + stale + ignored + rejected, less duplicates")
			assert.LessOrEqual(t, totals.Outcomes[cdc.OutcomeFailed], uint64(st.Retried))

			rejected := totals.Outcomes[cdc.OutcomeRejected]
			parkedDuplicates := 0
			for id := range p.MalformedIDs {
				parkedDuplicates += seen.ok[id] - 1
			}
			assert.Equal(t, uint64(p.Malformed+parkedDuplicates), rejected, "each 2xx for a malformed message parked it")
			// A park whose reply Redis lost in its crash is retried and parked again.
			assert.GreaterOrEqual(t, uint64(parked), rejected)
			assert.LessOrEqual(t, uint64(parked), rejected+totals.Outcomes[cdc.OutcomeFailed])
		},
	}
}

// pullChaos is pull delivery under the convergence test: the worker
// streaming from the Pub/Sub fake, which delivers 20% of the messages a
// second time while the first delivery is out and shuffles every response.
// The worker is killed (SIGKILL) with batches in flight: their acks are
// never sent, and once their leases end (the fake's clock moves past the
// ack deadline) they are delivered to the restarted worker.
//
// Accounting, from the fake's ack tallies: every published message had
// exactly one ack that took effect (none lost), no ack id was acknowledged
// twice (none doubled), nothing was dead-lettered, and the duplicates were
// delivered.
func pullChaos(t *testing.T, rig *chaosRig) chaosDelivery {
	ctx := rig.ctx
	q, err := StartPull(ctx, rig.gen.Topics(), PullOptions{MaxDeliveryAttempts: 30})
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	q.Fake.SetFaults(pubsubfake.Faults{Duplicate: 0.2, Shuffle: true, Seed: 7})
	qctx, stopQueue := context.WithCancel(ctx)
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		assert.NoError(t, q.Run(qctx))
	}()
	t.Cleanup(func() { stopQueue(); <-queueDone })

	bin, err := BuildWorker(ctx, rig.dir)
	require.NoError(t, err)
	port, err := FreePort()
	require.NoError(t, err)
	fn := &Function{Name: "worker", Bin: bin, Port: port, Output: rig.log, Env: append(rig.env, q.Env()...)}
	require.NoError(t, fn.Start(ctx))
	t.Cleanup(func() { fn.Kill() })

	client := &http.Client{Timeout: 10 * time.Second}
	var lives Totals // the outcomes of the killed lifetime
	scrape := func() Totals {
		now, err := Scrape(ctx, client, fn.URL())
		require.NoError(t, err)
		return now
	}
	failed := func() int64 { // called by Eventually's goroutine: no FailNow
		now, err := Scrape(ctx, client, fn.URL())
		if err != nil {
			return -1
		}
		return int64(now.Outcomes[cdc.OutcomeFailed])
	}
	return chaosDelivery{
		publisher: q,
		pending:   func() int64 { return q.Stats().Pending },
		idle:      q.Idle,
		failures:  failed,
		crash: func() {
			// Killed holding leases: their acks are never sent.
			require.Eventually(t, func() bool { return q.Fake.Outstanding() > 0 }, 30*time.Second, time.Millisecond)
			lives = scrape() // not complete: the worker goes on until it is killed
			require.NoError(t, fn.Kill())
			// Every stream of the dead worker is gone, so every lease it held
			// was taken before the clock moves past them.
			require.Eventually(t, func() bool { return q.Fake.Streams() == 0 }, 30*time.Second, 5*time.Millisecond)
			q.Fake.Advance(pubsubpull.DefaultAckDeadline + time.Second)
			require.NoError(t, fn.Start(ctx))
		},
		stop: fn.Stop,
		account: func(p Produced, parked int) {
			published := int64(p.Changes + p.Malformed)
			st := q.Stats()
			acks := q.Fake.Acks()
			last := scrape()
			t.Logf("queue %+v; acks current=%d stale=%d repeated=%d duplicated=%d; worker outcomes %v before the kill, %v after",
				st, len(acks.Current), acks.Stale, acks.Repeated, acks.Duplicated, lives.Outcomes, last.Outcomes)
			assert.Equal(t, published, st.Published)
			assert.Zero(t, st.DeadLettered)
			assert.Zero(t, st.Pending)
			assert.Len(t, acks.Current, int(published), "every published message was acked")
			for id, n := range acks.Current {
				if !assert.Equal(t, 1, n, "message %s acked more than once", id) {
					break
				}
			}
			assert.Zero(t, acks.Repeated, "no ack id was acknowledged twice")
			assert.Positive(t, acks.Duplicated, "the fake delivered duplicates")
			redelivered := 0
			for _, m := range q.Fake.Messages() {
				redelivered += m.Deliveries - 1
			}
			assert.Greater(t, redelivered, acks.Duplicated, "the kill's leases and Redis's nacks came back too")
			assert.Positive(t, lives.Plus(last).Outcomes[cdc.OutcomeFailed], "Redis's crash failed deliveries")
			// Each malformed message was parked at least once; a redelivered
			// one (a duplicate, the kill) is parked again.
			assert.GreaterOrEqual(t, parked, p.Malformed)
		},
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
	t.Logf("process log tail:\n%s", b)
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
