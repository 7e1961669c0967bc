// Package function wires the push handler for deployment: it reads the
// environment (design section 2, Configuration), builds the Redis client,
// the store, the decoder, the parker and the summary logger, and registers
// the handler with the Functions Framework as "Apply" (function.go). Its
// cmd/ runs the same Service on a plain HTTP server for local use.
package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"cloud.google.com/go/logging"
	"cloud.google.com/go/pubsub/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpark"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// Defaults of the environment settings.
const (
	DefaultPort          = "8080"
	DefaultMemcacheAddrs = "127.0.0.1:11211"
)

// The values of CACHE_BACKEND.
const (
	BackendRedis     = "redis"
	BackendMemcached = "memcached"
)

// Option adjusts NewFromEnv.
type Option func(*options)

type options struct {
	logOut io.Writer
}

// WithLogOutput sends the JSON log lines (rejects, errors, summaries) to w
// instead of os.Stdout.
func WithLogOutput(w io.Writer) Option { return func(o *options) { o.logOut = w } }

// Service is the configured push handler with everything it owns.
type Service struct {
	// Port is the TCP port to serve on ("0": any free port).
	Port string

	handler   *handler.Handler
	log       *slog.Logger
	redis     *redis.Client         // nil with memcached
	memcache  *memcachestore.Client // nil with Redis
	store     cacheStore
	check     svcenv.CacheCheck // pings the cache: at start and for /healthz
	pubsub    *pubsub.Client    // nil without REJECT_TOPIC
	publisher *pubsub.Publisher // nil without REJECT_TOPIC
	logClient *logging.Client

	stopSummaries context.CancelFunc
	summariesDone chan struct{}   // closed when the summary loop has written its last entry
	loaderDone    <-chan struct{} // closed when the column registry loader has stopped
}

// NewFromEnv builds the service from the environment:
//
//	PORT              port to serve on, default 8080
//	REDIS_URL         redis://host:6379/0 or rediss:// (TLS), default redis://127.0.0.1:6379/0
//	REDIS_CA_CERT     PEM file of the CA that signed the Redis server certificate (needs rediss://)
//	CACHE_CONFIG      YAML config file (cdc.LoadConfig); none: every table, replicate mode
//	CACHE_PREFIX      key prefix, overrides the file's
//	CACHE_SERVER_NAME Debezium server name for compact rows, overrides the file's server_name
//	REJECT_TOPIC      projects/P/topics/T: park rejects there instead of the Redis stream
//	SUMMARY_INTERVAL  how often the per-table summary is logged, default 1m
//	PUSH_MEMORY_MIB   MiB the pushes in flight may hold at once (handler.WithMemoryBudget);
//	                  default a quarter of the container's memory limit, else 128
//	CACHE_BACKEND     redis (default) or memcached
//	MEMCACHE_ADDRS    host:port,... of the memcached nodes, default 127.0.0.1:11211
//
// A bad setting is an error naming the variable. The cache is pinged once
// (at most svcenv.HealthTimeout): when it does not answer (a wrong host,
// password or database number), one error naming the setting is logged and
// the service starts anyway, answering pushes 503 (redelivered) and
// /healthz 503 until the cache answers, rather than crash-looping. memcached has no stream to
// park rejected messages in: without REJECT_TOPIC they are answered 503
// (the subscription's dead-letter topic keeps them in the end), and start-up
// logs one warning saying so.
func NewFromEnv(ctx context.Context, getenv func(string) string, opts ...Option) (*Service, error) {
	o := options{logOut: os.Stdout}
	for _, opt := range opts {
		opt(&o)
	}
	port := getenv("PORT")
	if port == "" {
		port = DefaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("PORT: %q is not a TCP port number", port)
	}
	redisOpts, err := svcenv.RedisOptions(getenv("REDIS_URL"), getenv("REDIS_CA_CERT"))
	if err != nil {
		return nil, err
	}
	cfg, err := svcenv.CacheConfig(getenv("CACHE_CONFIG"), getenv("CACHE_PREFIX"), getenv("CACHE_SERVER_NAME"))
	if err != nil {
		return nil, err
	}
	interval, err := svcenv.SummaryInterval(getenv("SUMMARY_INTERVAL"))
	if err != nil {
		return nil, err
	}
	budget, err := memoryBudget(getenv("PUSH_MEMORY_MIB"), cgroupMemoryMax)
	if err != nil {
		return nil, err
	}
	backend := getenv("CACHE_BACKEND")
	var memcacheAddrs []string
	switch backend {
	case "", BackendRedis:
		backend = BackendRedis
	case BackendMemcached:
		if memcacheAddrs, err = parseAddrs(firstNonEmpty(getenv("MEMCACHE_ADDRS"), DefaultMemcacheAddrs)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("CACHE_BACKEND: %q is neither %s nor %s", backend, BackendRedis, BackendMemcached)
	}
	topic := getenv("REJECT_TOPIC")
	project, err := svcenv.RejectTopic(topic)
	if err != nil {
		return nil, err
	}

	s := &Service{Port: port, log: svcenv.NewLogger(o.logOut)}
	var summaryLog *logging.Logger
	if s.logClient, summaryLog, err = svcenv.SummaryLog(ctx, project, o.logOut); err != nil {
		return nil, err
	}

	var parker pipeline.Parker
	if topic != "" {
		s.pubsub, err = pubsub.NewClient(ctx, project)
		if err != nil {
			s.logClient.Close()
			return nil, fmt.Errorf("REJECT_TOPIC: pubsub client: %w", err)
		}
		s.publisher = s.pubsub.Publisher(topic)
		parker = pubsubpark.New(s.publisher)
	}
	if backend == BackendMemcached {
		// Validated above: NewClient fails only on what parseAddrs refuses.
		s.memcache, _ = memcachestore.NewClient(memcacheAddrs, memcachestore.ClientOptions{})
		s.store = memcacheStore{memcachestore.New(s.memcache, cfg, memcachestore.Options{Logger: s.log})}
		s.check = svcenv.CacheCheck{Ping: s.memcache.Ping, Problem: svcenv.MemcacheProblem}
		if parker == nil {
			parker = memcachestore.NoParker{}
			s.log.Warn("CACHE_BACKEND=memcached without REJECT_TOPIC: memcached has no stream to park rejected messages in, so they are answered 503 and retried until the subscription's dead-letter topic takes them; set REJECT_TOPIC to park them")
		}
	} else {
		s.redis = redis.NewClient(redisOpts)
		s.store = redisStore{redisstore.New(s.redis, cfg, redisstore.Options{Logger: s.log})}
		s.check = svcenv.CacheCheck{Ping: func(ctx context.Context) error { return s.redis.Ping(ctx).Err() },
			Problem: func(err error) string { return svcenv.RedisProblem(redisOpts, err) }}
		if parker == nil {
			parker = redisstore.NewRedisParker(s.redis, cfg.Prefix)
		}
	}
	answers := s.check.AtStart(ctx, s.log, "pushes are answered 503 (Pub/Sub redelivers them)")
	m := pipeline.NewMetrics()
	dec := debezium.NewDecoder(cfg)
	// The column registry types and keys compact messages. It is loaded
	// before the first request (a failure, such as Redis down, is logged and
	// retried every second in the background: until then a compact message
	// has no key and is parked, or retried while parking fails too).
	// The registry lives in Redis; with memcached there is none (yet), and
	// compact messages take their key and types from the config alone.
	// Without an answer at start the loader's own retries take over, and
	// the start is not delayed further.
	var loader *schema.Loader
	if s.redis != nil {
		loader = &schema.Loader{Redis: s.redis, Prefix: cfg.Prefix, Set: dec.SetRegistry, Log: s.log}
	} else {
		s.log.Warn("CACHE_BACKEND=memcached: no column registry (it is kept in Redis); compact messages need key: and types: in CACHE_CONFIG")
	}
	s.handler = handler.New(pipeline.New(pipeline.Config{
		Decoder: dec,
		Store:   s.store,
		Parker:  parker,
		Metrics: m,
		Logger:  s.log,
	}), handler.WithMemoryBudget(budget))

	sumCtx, cancel := context.WithCancel(context.Background())
	s.stopSummaries = cancel
	s.summariesDone = make(chan struct{})
	if loader != nil {
		s.loaderDone = loader.Start(ctx, answers, schema.StartTimeout, sumCtx)
	} else {
		noLoader := make(chan struct{})
		close(noLoader)
		s.loaderDone = noLoader
	}
	go func() {
		defer close(s.summariesDone)
		pipeline.RunSummaries(sumCtx, pipeline.NewSummarizer(m), interval, pipeline.LogSummary(summaryLog))
	}()
	return s, nil
}

// cgroupMemoryMax holds the container's memory limit under cgroup v2.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// memoryBudget returns the push memory budget in bytes: PUSH_MEMORY_MIB
// when set, else a quarter of the container's memory limit (cgroup v2, as
// Cloud Run's second generation sets it), else handler.DefaultMemoryBudget.
// A quarter, because the Go collector lets the heap reach about twice what
// is live and the process needs room of its own.
func memoryBudget(setting, cgroupFile string) (int64, error) {
	if setting != "" {
		n, err := strconv.ParseInt(setting, 10, 64)
		if err != nil || n <= 0 || n > 1<<20 {
			return 0, fmt.Errorf("PUSH_MEMORY_MIB: %q is not a positive number of MiB", setting)
		}
		return n << 20, nil
	}
	if b, err := os.ReadFile(cgroupFile); err == nil {
		// "max" (no limit) does not parse and falls through to the default.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n / 4, nil
		}
	}
	return handler.DefaultMemoryBudget, nil
}

// ServeHTTP handles one push request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics returns the handler's metrics (for a progress line).
func (s *Service) Metrics() *pipeline.Metrics { return s.handler.Metrics() }

// Mux returns the routes of a server the process owns: the push handler at
// "/", Prometheus text at "/metrics", a readiness check at "/healthz" (200
// while the cache answers a ping, made again on every request; else 503
// naming the setting to check) and a liveness check at "/livez" (always
// 200: a cache outage must not get the instance restarted, which cannot
// help).
func (s *Service) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/", s.handler)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metrics.ContentType)
		err := s.handler.Metrics().WritePrometheus(w)
		if err == nil {
			err = s.store.writeMetrics(w)
		}
		if err == nil {
			p := metrics.NewPromWriter(w)
			p.Family("cdc_push_shed_total", "counter", "Pushes answered 503 because the pushes in flight held the memory budget.")
			p.Counter("cdc_push_shed_total", uint64(s.handler.Shed()))
			err = p.Flush()
		}
		if err != nil {
			s.log.WarnContext(r.Context(), "writing /metrics failed", "err", err.Error())
		}
	})
	mux.HandleFunc("GET /healthz", s.check.Healthz(nil))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return mux
}

// cacheStore is a store with what the service needs beside ApplyBatch.
type cacheStore interface {
	pipeline.Store
	Close(ctx context.Context) error
	// writeMetrics appends the store's counters to /metrics: how well the
	// apply path batches, and the faults that otherwise reach only the logs.
	writeMetrics(w io.Writer) error
}

type redisStore struct{ *redisstore.Store }

func (r redisStore) writeMetrics(w io.Writer) error { return svcenv.WriteStoreMetrics(w, r.Stats()) }

type memcacheStore struct{ *memcachestore.Store }

func (m memcacheStore) writeMetrics(w io.Writer) error {
	return svcenv.WriteMemcacheStoreMetrics(w, m.Stats())
}

// parseAddrs reads MEMCACHE_ADDRS.
func parseAddrs(v string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return nil, fmt.Errorf("MEMCACHE_ADDRS: %q is not host:port", a)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("MEMCACHE_ADDRS: no host:port in %q", v)
	}
	return addrs, nil
}

// Close writes the last summary, flushes the store (its checkpoint), and
// releases the clients. Call it after the server has stopped taking requests.
func (s *Service) Close(ctx context.Context) error {
	s.stopSummaries()
	for _, done := range []<-chan struct{}{s.summariesDone, s.loaderDone} {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	var errs []error
	if err := s.store.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if s.publisher != nil {
		s.publisher.Stop()
	}
	if s.pubsub != nil {
		if err := s.pubsub.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pubsub: %w", err))
		}
	}
	if s.redis != nil {
		if err := s.redis.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	if s.memcache != nil {
		_ = s.memcache.Close() // closes idle connections only; cannot fail
	}
	if err := s.logClient.Close(); err != nil {
		errs = append(errs, fmt.Errorf("logging: %w", err))
	}
	return errors.Join(errs...)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
