package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// Config configures Run.
type Config struct {
	// Cache is the cache the function or worker writes to: CacheRedis (""
	// too) or CacheMemcached.
	Cache string
	// RedisURL is the Redis (Cache redis).
	RedisURL string
	// MemcacheAddrs are the memcached nodes (Cache memcached). The run
	// deletes every item it can write there first (memcached cannot delete
	// by prefix), keeps key: and types: in the cache config (the column
	// registry lives in Redis), and parks rejected messages in the Pub/Sub
	// or Kafka fake's RejectTopic (memcached has no stream).
	MemcacheAddrs []string
	// Prefix is the cache key prefix of the run; Run deletes its keys first.
	Prefix string
	// Events stops the run once that many changes are published and applied;
	// 0 runs until ctx is done.
	Events int
	// Rate is changes per second; 0 is as fast as the pipeline goes.
	Rate float64
	// Seed and Keys configure the generator (changegen.Options); Format
	// picks the Debezium profile its messages follow ("" is compact).
	Seed   uint64
	Keys   int
	Format changegen.Format
	// Malformed is the share of extra malformed messages published (each
	// must be parked: the summary's rejected).
	Malformed float64
	// MySQLDSN, when set, is a MySQL server (MariaDB too) where the run
	// creates the model's tables, in RunDatabase, and syncs the column
	// registry from them as `cachectl schema sync` does in the cloud; the
	// cache config then only lists the tables. Empty, the cache config
	// carries each table's key: and types: itself.
	MySQLDSN string
	// Delivery is how changes reach the cache: DeliveryPush ("" too: the
	// push bridge POSTs to the push function), DeliveryPull (the worker
	// pulls from the Pub/Sub fake) or DeliveryKafka (the worker consumes
	// from the Kafka fake as a consumer group).
	Delivery string
	// Concurrency is the bridge's POSTs in flight (push).
	Concurrency int
	// FunctionBin is a prebuilt function binary (push), run with
	// FunctionArgs; WorkerBin a prebuilt worker binary (pull, kafka), run
	// with WorkerArgs; "" builds
	// one from the module's source (go build, inside the tree).
	FunctionBin  string
	FunctionArgs []string
	WorkerBin    string
	WorkerArgs   []string
	// Port is the function's or the worker's port; 0 picks a free one.
	Port int
	// ControlAddr, when set, serves the run's control endpoint there:
	// /bridge (the bridge's counters, for `cachectl status`) and /cut (a
	// consistent cut, for `cachectl verify` during the run).
	ControlAddr string
	// ExpectedPath, when set, receives the generator's final state (JSON
	// lines) for `cachectl verify`.
	ExpectedPath string
	// StatePath, when set, is the state file (State) through which other
	// commands find the run.
	StatePath string
	// DrainTimeout bounds the drain after ctx is done (default 10 s).
	DrainTimeout time.Duration
	// Abort, when it closes or receives, ends a drain at once.
	Abort <-chan struct{}
	// Live refreshes the progress line in place (a terminal); otherwise a
	// progress line is printed every LogInterval.
	Live bool
	// Command is how the summary's hints name cachectl ("cachectl", or
	// "go run ./cmd/cachectl").
	Command string
	// WorkDir holds the config file, the function binary and its log; ""
	// makes a temporary one.
	WorkDir string
	// Out receives the progress line and the summary.
	Out io.Writer
}

// DefaultDrainTimeout bounds the drain after Ctrl-C.
const DefaultDrainTimeout = 10 * time.Second

// LogInterval is how often a progress line is printed when not Live.
const LogInterval = 5 * time.Second

// Summary is what a run did. It adds up: Published = Applied + Stale +
// Ignored + Rejected + DeadLettered + Pending, every message counted once
// (the bridge is paused while the counters are read, and the function
// counts an outcome before it answers).
type Summary struct {
	// Published counts messages published.
	Published int64
	// Applied counts changes written (rows and tombstones); Stale, Ignored
	// and Rejected the other outcomes, from the function's metrics.
	Applied, Stale, Ignored, Rejected uint64
	// DeadLettered counts messages that failed every delivery attempt.
	DeadLettered int64
	// Pending is the bridge's backlog at the end: published, not yet
	// acknowledged or dead-lettered.
	Pending int64
	// LagP50 and LagP99 are quantiles of the pipeline lag (apply time minus
	// the envelope's ts_ms) over the run.
	LagP50, LagP99 time.Duration
	// EventsPerSec is changes applied per second of publishing and applying.
	EventsPerSec float64
	// BytesPerEvent is what Pub/Sub would bill for the average change
	// message published (cost.MessageBytes: data, attributes, ordering key,
	// timestamp and message id), before any request minimum.
	BytesPerEvent float64
}

// String formats the summary line `make run` ends with.
func (s Summary) String() string {
	return fmt.Sprintf("summary: published=%d applied=%d stale=%d ignored=%d rejected=%d dead_lettered=%d pending=%d "+
		"lag_p50_ms=%s lag_p99_ms=%s events_per_sec=%.0f bytes_per_event=%.0f",
		s.Published, s.Applied, s.Stale, s.Ignored, s.Rejected, s.DeadLettered, s.Pending,
		millis(s.LagP50), millis(s.LagP99), s.EventsPerSec, s.BytesPerEvent)
}

func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func summarize(st pushbridge.Stats, t Totals, p Produced, elapsed time.Duration) Summary {
	s := Summary{
		Published:    st.Published,
		Applied:      t.Applied(),
		Stale:        t.Outcomes[cdc.OutcomeStale],
		Ignored:      t.Outcomes[cdc.OutcomeIgnored],
		Rejected:     t.Outcomes[cdc.OutcomeRejected],
		DeadLettered: st.DeadLettered,
		Pending:      st.Pending,
		LagP50:       t.Lag.Quantile(0.5),
		LagP99:       t.Lag.Quantile(0.99),
	}
	if elapsed > 0 {
		s.EventsPerSec = float64(t.Handled()) / elapsed.Seconds()
	}
	if p.Changes > 0 {
		s.BytesPerEvent = float64(p.ChangeBytes) / float64(p.Changes)
	}
	return s
}

// progressLine formats one refresh of the live line from two scrapes 500 ms
// (interval) apart: lags and rate are over the interval.
func progressLine(st pushbridge.Stats, now, prev Totals, interval time.Duration) string {
	d := now.Minus(prev)
	return fmt.Sprintf("published=%d applied=%d stale=%d rejected=%d pending=%d lag_p50_ms=%s lag_p99_ms=%s events/s=%.0f",
		st.Published, now.Applied(), now.Outcomes[cdc.OutcomeStale], now.Outcomes[cdc.OutcomeRejected], st.Pending,
		millis(d.Lag.Quantile(0.5)), millis(d.Lag.Quantile(0.99)), float64(d.Handled())/interval.Seconds())
}

// ClearPrefix deletes every key under prefix (SCAN and UNLINK), so a run
// starts from an empty namespace; it returns how many it deleted.
func ClearPrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	if prefix == "" || strings.ContainsAny(prefix, "*?[]") {
		return 0, fmt.Errorf("clear: refusing prefix %q (empty or a glob)", prefix)
	}
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, keys...).Err()
		n += len(keys)
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// progressInterval is how often the progress is sampled (and the live line
// refreshed).
const progressInterval = 500 * time.Millisecond

// Run runs the local pipeline until cfg.Events changes are applied or ctx
// is done, printing progress and the summary to cfg.Out. When ctx is done it
// stops publishing, lets what is published drain (at most cfg.DrainTimeout,
// or until cfg.Abort), and returns the summary with a nil error: stopping a
// run is how it ends.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	work := cfg.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "cloudsql-cache-run-")
		if err != nil {
			return Summary{}, err
		}
		defer os.RemoveAll(dir)
		work = dir
	}

	format := cfg.Format
	if format == "" {
		format = changegen.FormatCompact
	}
	genOpts := format.Apply(changegen.Options{Seed: cfg.Seed, Keys: cfg.Keys})
	memcached := cfg.Cache == CacheMemcached
	if cfg.MySQLDSN != "" && !memcached {
		genOpts.Database = RunDatabase
	}
	gen := changegen.New(genOpts)
	cacheConfig, types := gen.CacheConfig(cfg.Prefix), "key: and types: in the cache config"
	var cacheEnv []string
	var cleared int
	cacheName := cfg.RedisURL
	switch cfg.Cache {
	case "", CacheRedis:
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return Summary{}, fmt.Errorf("redis: %w", err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return Summary{}, fmt.Errorf("redis %s: %w (make run starts one with scripts/services.sh)", cfg.RedisURL, err)
		}
		if cleared, err = ClearPrefix(ctx, rdb, cfg.Prefix); err != nil {
			return Summary{}, err
		}
		if cfg.MySQLDSN != "" {
			if err := syncRegistry(ctx, cfg.MySQLDSN, gen, rdb, cfg.Prefix); err != nil {
				return Summary{}, fmt.Errorf("column registry: %w", err)
			}
			cacheConfig, types = gen.TablesConfig(cfg.Prefix), "column registry synced from MySQL database "+RunDatabase
		}
		cacheEnv = []string{"REDIS_URL=" + cfg.RedisURL}
	case CacheMemcached:
		mc, err := memcachestore.NewClient(cfg.MemcacheAddrs, memcachestore.ClientOptions{})
		if err != nil {
			return Summary{}, fmt.Errorf("memcached: %w", err)
		}
		defer mc.Close()
		if err := mc.Ping(ctx); err != nil {
			return Summary{}, fmt.Errorf("memcached: %w (make run starts one with scripts/services.sh)", err)
		}
		if cleared, err = ClearMemcached(ctx, mc, cfg.Prefix, gen); err != nil {
			return Summary{}, err
		}
		addrs := strings.Join(cfg.MemcacheAddrs, ",")
		cacheName = "memcached " + addrs
		types += " (the column registry lives in Redis: none on memcached)"
		cacheEnv = []string{"CACHE_BACKEND=memcached", "MEMCACHE_ADDRS=" + addrs}
	default:
		return Summary{}, fmt.Errorf("cache %q: not %s or %s", cfg.Cache, CacheRedis, CacheMemcached)
	}
	configPath := filepath.Join(work, "cache.yaml")
	if err := os.WriteFile(configPath, cacheConfig, 0o644); err != nil {
		return Summary{}, err
	}
	logPath := filepath.Join(work, "function.log")
	if cfg.Delivery == DeliveryPull || cfg.Delivery == DeliveryKafka {
		logPath = filepath.Join(work, "worker.log")
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return Summary{}, err
	}
	defer logFile.Close()
	// The pipeline runs on contexts of its own: ctx ending (Ctrl-C) stops
	// the producer, while the queue goes on delivering what is published.
	fn, q, err := startDelivery(context.WithoutCancel(ctx), cfg, work, append(cacheEnv,
		"CACHE_CONFIG="+configPath, "CACHE_PREFIX="+cfg.Prefix, "CACHE_SERVER_NAME="+changegen.DefaultServer, "SUMMARY_INTERVAL=1h",
	), gen.Topics(), genOpts.Ordering, out, logFile)
	if err != nil {
		return Summary{}, err
	}
	defer q.Close()
	defer fn.Stop()
	queueCtx, stopQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer stopQueue()
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		_ = q.Run(queueCtx)
	}()
	defer func() { stopQueue(); <-queueDone }()

	cuts := make(chan *cut)
	control := ""
	if cfg.ControlAddr != "" {
		ln, err := net.Listen("tcp", cfg.ControlAddr)
		if err != nil {
			return Summary{}, fmt.Errorf("control endpoint: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /bridge", q)
		mux.Handle("GET /cut", serveCut(cuts, work))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		control = "http://" + ln.Addr().String()
	}
	state := State{PID: os.Getpid(), Cache: cfg.Cache, Prefix: cfg.Prefix, Control: control, Started: time.Now().UTC()}
	if memcached {
		state.Memcache = cfg.MemcacheAddrs
	} else {
		state.Redis = cfg.RedisURL
	}
	if kq, ok := q.(*KafkaQueue); ok {
		state.Kafka, state.KafkaGroup = kq.Brokers(), kq.Group
	}
	if cfg.StatePath != "" {
		if err := WriteState(cfg.StatePath, state); err != nil {
			return Summary{}, err
		}
	}
	fmt.Fprintf(out, "cache %s, prefix %q (cleared %d keys); %s %s (log %s); control %s; %s messages, %s\n",
		cacheName, cfg.Prefix, cleared, fn.Name, fn.URL(), logPath, firstNonEmpty(control, "off"), format, types)
	stopHow := "Ctrl-C to stop"
	if cfg.Events > 0 {
		stopHow = fmt.Sprintf("stops after %d changes; Ctrl-C to stop sooner", cfg.Events)
	}
	fmt.Fprintf(out, "%s (publishing stops, what is published drains for up to %s, then a summary)\n", stopHow, cfg.DrainTimeout)

	type result struct {
		Produced
		err error
	}
	maxBacklog := int64(300)
	if cfg.Delivery == DeliveryKafka {
		maxBacklog = KafkaMaxBacklog
	}
	prodCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	produced := make(chan result, 1)
	go func() {
		p, err := Produce(prodCtx, gen, q, func() int64 { return q.Stats().Pending },
			ProduceOptions{Events: cfg.Events, Rate: cfg.Rate, Malformed: cfg.Malformed, MaxBacklog: maxBacklog, Cuts: cuts, Settled: q.Idle})
		produced <- result{p, err}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	p := progress{out: out, live: cfg.Live}
	start := time.Now()
	var prod *result
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for prod == nil || cfg.Events == 0 || !q.Idle() {
		var doneCuts <-chan *cut // cuts are the producer's while it runs, then served here
		if prod != nil {
			doneCuts = cuts
		}
		select {
		case <-ctx.Done():
		case r := <-produced:
			prod = &r
			if r.err != nil {
				return summarize(q.Stats(), p.last, r.Produced, time.Since(start)), r.err
			}
			continue
		case c := <-doneCuts:
			c.hold(ctx, q.Idle, func(path string) error { return writeExpected(gen, path) })
			continue
		case <-tick.C:
			p.sample(ctx, client, fn.URL(), q.Stats())
			continue
		}
		break
	}
	stopProducing()
	if prod == nil {
		r := <-produced // the generator is the producer's until it returns
		prod = &r
	}
	if ctx.Err() != nil {
		p.end()
		fmt.Fprintf(out, "stopping: publishing stopped, draining %d pending (up to %s; Ctrl-C again to stop now)\n",
			q.Stats().Pending, cfg.DrainTimeout)
		drain(q, cfg.DrainTimeout, cfg.Abort, tick.C, func() { p.sample(context.Background(), client, fn.URL(), q.Stats()) })
	}
	// Paused, the queue has no delivery in flight and has counted every answer,
	// so its counters and the function's agree.
	q.Pause()
	st := q.Stats()
	if t, err := Scrape(context.Background(), client, fn.URL()); err == nil {
		p.last = t
	}
	stopQueue()
	q.Resume()
	<-queueDone
	sum := summarize(st, p.last, prod.Produced, time.Since(start))
	p.end()
	fmt.Fprintln(out, sum)
	var errs []error
	if cfg.ExpectedPath != "" {
		switch {
		case sum.Pending != 0 || sum.DeadLettered != 0:
			fmt.Fprintf(out, "expected state not written: %d changes are not in the cache (pending or dead-lettered), so it would not match\n",
				sum.Pending+sum.DeadLettered)
		default:
			if err := writeExpected(gen, cfg.ExpectedPath); err != nil {
				errs = append(errs, err)
				break
			}
			state.Expected = cfg.ExpectedPath
			fmt.Fprintf(out, "expected state: %s (check it: %s verify)\n", cfg.ExpectedPath, firstNonEmpty(cfg.Command, "cachectl"))
		}
	}
	if cfg.StatePath != "" {
		state.Ended = time.Now().UTC()
		if err := WriteState(cfg.StatePath, state); err != nil {
			errs = append(errs, err)
		}
	}
	if err := fn.Stop(); err != nil {
		errs = append(errs, err)
	}
	return sum, errors.Join(errs...)
}

// drain waits until the bridge has nothing pending, at most timeout, or
// until abort; sample is called on every tick.
func drain(q queue, timeout time.Duration, abort <-chan struct{}, tick <-chan time.Time, sample func()) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !q.Idle() {
		select {
		case <-deadline.C:
			return
		case <-abort:
			return
		case <-tick:
			sample()
		}
	}
}

// The values of Config.Delivery.
const (
	DeliveryPush  = "push"
	DeliveryPull  = "pull"
	DeliveryKafka = "kafka"
)

// queue is a run's transport between the producer and the process that
// applies the changes: it takes what is published, delivers it while Run
// runs, reports the backlog, and can hold deliveries while counters are
// read (Pause, Resume).
type queue interface {
	Publisher
	// ServeHTTP serves Stats as JSON (the control endpoint's /bridge).
	http.Handler
	Run(ctx context.Context) error
	Stats() pushbridge.Stats
	Idle() bool
	Pause()
	Resume()
	Close() error
}

// pushQueue is push delivery: the in-process Pub/Sub and the bridge that
// POSTs its messages to the function; fake, when not nil, is the Pub/Sub
// fake the PubSub is dialled to (a memcached run's: the function parks in
// its RejectTopic).
type pushQueue struct {
	*pushbridge.Bridge
	*pushbridge.PubSub
	fake *pubsubfake.Server
}

// Close closes the client and the fake.
func (q pushQueue) Close() error {
	err := q.PubSub.Close()
	if q.fake != nil {
		err = errors.Join(err, q.fake.Close())
	}
	return err
}

// startDelivery starts the transport cfg.Delivery names and the process
// that applies behind it (env is that process's cache settings; its output
// goes to log): the push function behind the push bridge, or the worker
// pulling from the Pub/Sub fake or consuming from the Kafka fake. On
// memcached, which has no stream to park in, the process parks rejected
// messages in RejectTopic of the run's Pub/Sub fake (REJECT_TOPIC) or Kafka
// fake (KAFKA_DLQ_TOPIC).
func startDelivery(ctx context.Context, cfg Config, work string, env, topics []string, ordering bool,
	out, log io.Writer) (fn *Function, q queue, err error) {
	defer func() {
		if err != nil && q != nil {
			q.Close()
		}
	}()
	port := cfg.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, nil, err
		}
	}
	memcached := cfg.Cache == CacheMemcached
	fn = &Function{Port: port, Output: log, Env: env}
	switch cfg.Delivery {
	case "", DeliveryPush:
		fn.Name, fn.Bin, fn.Args = "function", cfg.FunctionBin, cfg.FunctionArgs
		if fn.Bin == "" {
			fmt.Fprintln(out, "building the push function ...")
			if fn.Bin, err = BuildFunction(ctx, work); err != nil {
				return nil, nil, err
			}
		}
		pq := pushQueue{}
		if memcached {
			// The function is another process: it reaches the reject
			// topic through a fake served on a port.
			if pq.fake, err = pubsubfake.Start("127.0.0.1:0"); err != nil {
				return nil, nil, fmt.Errorf("pubsub fake: %w", err)
			}
			if pq.PubSub, err = pushbridge.DialPubSub(ctx, "local", pq.fake.Addr); err != nil {
				return nil, nil, errors.Join(err, pq.fake.Close())
			}
			q = pq
			if fn.Env, err = rejectTopicEnv(ctx, pq.PubSub, fn.Env, pq.fake.Addr); err != nil {
				return nil, nil, err
			}
		} else {
			if pq.PubSub, err = pushbridge.NewPubSub(ctx, "local"); err != nil {
				return nil, nil, err
			}
			q = pq
		}
		if err := fn.Start(ctx); err != nil {
			return nil, nil, err
		}
		if pq.Bridge, err = pushbridge.New(ctx, pushbridge.Config{
			PubSub: pq.PubSub, Topics: topics, Endpoint: fn.URL(), Concurrency: cfg.Concurrency, Ordering: ordering,
		}); err != nil {
			return nil, nil, errors.Join(err, fn.Stop())
		}
		return fn, pq, nil
	case DeliveryPull, DeliveryKafka:
		var env []string
		if cfg.Delivery == DeliveryPull {
			pq, err := StartPull(ctx, topics, PullOptions{Ordering: ordering})
			if err != nil {
				return nil, nil, err
			}
			q, env = pq, pq.Env()
			if memcached {
				if env, err = rejectTopicEnv(ctx, pq.PubSub, env, ""); err != nil {
					return nil, nil, err
				}
			}
		} else {
			kq, err := StartKafkaQueue(topics)
			if err != nil {
				return nil, nil, err
			}
			q, env = kq, kq.Env()
			if memcached {
				env = append(env, "KAFKA_DLQ_TOPIC="+RejectTopic)
			}
		}
		fn.Name, fn.Bin, fn.Args, fn.Env = "worker", cfg.WorkerBin, cfg.WorkerArgs, append(fn.Env, env...)
		if fn.Bin == "" {
			fmt.Fprintln(out, "building the worker ...")
			if fn.Bin, err = BuildWorker(ctx, work); err != nil {
				return nil, nil, err
			}
		}
		if err := fn.Start(ctx); err != nil {
			return nil, nil, err
		}
		return fn, q, nil
	default:
		return nil, nil, fmt.Errorf("delivery %q: not %s, %s or %s", cfg.Delivery, DeliveryPush, DeliveryPull, DeliveryKafka)
	}
}

// rejectTopicEnv creates RejectTopic on ps and returns env with
// REJECT_TOPIC naming it (and PUBSUB_EMULATOR_HOST=emulator, unless "").
func rejectTopicEnv(ctx context.Context, ps *pushbridge.PubSub, env []string, emulator string) ([]string, error) {
	if err := ps.CreateTopic(ctx, RejectTopic); err != nil {
		return nil, err
	}
	env = append(env, "REJECT_TOPIC="+ps.TopicName(RejectTopic))
	if emulator != "" {
		env = append(env, "PUBSUB_EMULATOR_HOST="+emulator)
	}
	return env, nil
}

// progress prints the progress line: refreshed in place on a terminal
// (live), else one line every LogInterval, so a log gets lines, not one
// line of carriage returns.
type progress struct {
	out        io.Writer
	live       bool
	prev, last Totals
	lineLen    int       // length of the live line on screen, 0 when none
	printed    time.Time // when the last non-live line was printed
}

func (p *progress) sample(ctx context.Context, client *http.Client, url string, st pushbridge.Stats) {
	if t, err := Scrape(ctx, client, url); err == nil {
		p.prev, p.last = p.last, t
	}
	line := progressLine(st, p.last, p.prev, progressInterval)
	switch {
	case p.live:
		fmt.Fprintf(p.out, "\r%-*s", p.lineLen, line)
		p.lineLen = len(line)
	case time.Since(p.printed) >= LogInterval:
		fmt.Fprintln(p.out, line)
		p.printed = time.Now()
	}
}

// end finishes the live line, so what follows starts on a line of its own.
func (p *progress) end() {
	if p.lineLen > 0 {
		fmt.Fprintln(p.out)
		p.lineLen = 0
	}
}

func writeExpected(gen *changegen.Generator, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen.WriteExpected(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
