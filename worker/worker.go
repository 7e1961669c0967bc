package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"cloud.google.com/go/logging"
	"cloud.google.com/go/pubsub/v2"
	"github.com/redis/go-redis/v9"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpark"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpull"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// backend is a cache store with what the worker needs beside ApplyBatch.
type backend interface {
	pipeline.Store
	// Ping reports whether the cache answers (for /healthz).
	Ping(ctx context.Context) error
	// WritePrometheus writes the store's counters for /metrics.
	WritePrometheus(w io.Writer) error
	// FlushCheckpoint writes the checkpoint of every change applied so far
	// now: the Kafka transport calls it before committing offsets.
	FlushCheckpoint(ctx context.Context) error
	// Close finishes queued work, flushes the checkpoint and releases the
	// connections.
	Close(ctx context.Context) error
}

// source is a queue transport feeding the core.
type source interface {
	// Run receives until ctx ends, then drains (stops receiving, finishes
	// and acknowledges the batches in flight) and returns.
	Run(ctx context.Context) error
	// Connected reports whether the transport is connected to its queue.
	Connected() bool
	// WritePrometheus writes the transport's counters for /metrics.
	WritePrometheus(w io.Writer) error
}

// Worker is a configured worker process. New starts listening; Run does
// the work.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	store   backend
	check   svcenv.CacheCheck // pings the store: at the start of Run and for /healthz
	src     source
	core    *pipeline.Core
	metrics *pipeline.Metrics
	loader  *schema.Loader // keeps the decoder's column registry fresh; nil without one (memcached)

	logClient  *logging.Client
	summaryLog *logging.Logger
	closers    []func() error // clients to close last, in order
}

// Option adjusts New.
type Option func(*options)

type options struct{ logOut io.Writer }

// WithLogOutput sends the JSON log lines (rejects, errors, summaries) to w
// (default: the stdout New is given).
func WithLogOutput(w io.Writer) Option { return func(o *options) { o.logOut = w } }

// New builds the worker from cfg and listens on its port; log lines go to
// stdout. The cache and the queue are contacted only by Run.
func New(ctx context.Context, cfg Config, stdout io.Writer, opts ...Option) (w *Worker, err error) {
	o := options{logOut: stdout}
	for _, opt := range opts {
		opt(&o)
	}
	w = &Worker{cfg: cfg, log: svcenv.NewLogger(o.logOut), metrics: pipeline.NewMetrics()}
	// Not through the result: every error return sets that to nil.
	built := w
	defer func() {
		if err != nil {
			built.closeClients()
		}
	}()
	project := firstNonEmpty(cfg.RejectProject, cfg.Pull.Project)
	if w.logClient, w.summaryLog, err = svcenv.SummaryLog(ctx, project, o.logOut); err != nil {
		return nil, err
	}
	w.closers = append(w.closers, w.logClient.Close)

	var parker pipeline.Parker
	dec := debezium.NewDecoder(cfg.Cache)
	switch cfg.Backend {
	case BackendRedis:
		client := redis.NewClient(cfg.Redis)
		w.closers = append(w.closers, client.Close)
		// The column registry (in Redis) types and keys compact messages,
		// loaded and refreshed as the push function does.
		w.loader = &schema.Loader{Redis: client, Prefix: cfg.Cache.Prefix, Set: dec.SetRegistry, Log: w.log}
		w.store = &redisBackend{Store: redisstore.New(client, cfg.Cache, redisstore.Options{Logger: w.log}), client: client}
		parker = redisstore.NewRedisParker(client, cfg.Cache.Prefix)
		w.check.Problem = func(err error) string { return svcenv.RedisProblem(cfg.Redis, err) }
	case BackendMemcached:
		client, err := memcachestore.NewClient(cfg.MemcacheAddrs, memcachestore.ClientOptions{})
		if err != nil {
			return nil, fmt.Errorf("MEMCACHE_ADDRS: %w", err)
		}
		w.closers = append(w.closers, client.Close)
		w.store = &memcacheBackend{Store: memcachestore.New(client, cfg.Cache, memcachestore.Options{Logger: w.log}), client: client}
		w.check.Problem = svcenv.MemcacheProblem
		// The parker is chosen below (the reject topic or the DLQ topic),
		// else NoParker; and there is no column registry (it is kept in
		// Redis), as in the push function.
		w.log.Warn("CACHE_BACKEND=memcached: no column registry (it is kept in Redis); compact messages need key: and types: in CACHE_CONFIG")
	default:
		return nil, fmt.Errorf("CACHE_BACKEND: %q unknown", cfg.Backend)
	}
	if cfg.RejectTopic != "" {
		ps, err := pubsub.NewClient(ctx, cfg.RejectProject, pubsubOptions(cfg.Pull.EmulatorHost)...)
		if err != nil {
			return nil, fmt.Errorf("REJECT_TOPIC: pubsub client: %w", err)
		}
		pub := ps.Publisher(cfg.RejectTopic)
		w.closers = append(w.closers, func() error { pub.Stop(); return ps.Close() })
		parker = pubsubpark.New(pub)
	}
	// The Kafka client exists before the core: the DLQ parker produces with it.
	var kafka *kafkasource.Source
	if cfg.Delivery == DeliveryKafka {
		kc := cfg.Kafka.Source
		kc.Logger = w.log
		// A committed record is never delivered again: the checkpoint its
		// change moved must be written before its offset is committed.
		kc.Durable = w.store.FlushCheckpoint
		if kafka, err = kafkasource.New(kc); err != nil {
			return nil, fmt.Errorf("KAFKA_BROKERS: %w", err)
		}
		w.closers = append(w.closers, func() error { kafka.Client().Close(); return nil })
		if cfg.Kafka.DLQTopic != "" {
			parker = kafkasource.NewDLQParker(kafka.Client(), cfg.Kafka.DLQTopic)
		}
	}
	if parker == nil {
		// Only memcached gets here: it has no stream to park in. Refusing
		// keeps a rejected message unacknowledged (redelivered, and in the
		// end the subscription's dead-letter topic takes it) instead of
		// acknowledging it into nowhere.
		parker = memcachestore.NoParker{}
		w.log.Warn("CACHE_BACKEND=memcached without REJECT_TOPIC or KAFKA_DLQ_TOPIC: memcached has no stream to park rejected messages in, so they are not acknowledged and are redelivered until the subscription's dead-letter policy takes them (Kafka: the partition waits on them); set REJECT_TOPIC or KAFKA_DLQ_TOPIC to park them")
	}
	w.check.Ping = w.store.Ping
	w.core = pipeline.New(pipeline.Config{Decoder: dec, Store: w.store,
		Parker: parker, Metrics: w.metrics, Logger: w.log})

	switch cfg.Delivery {
	case DeliveryPull:
		ps, err := pubsub.NewClient(ctx, cfg.Pull.Project, pubsubOptions(cfg.Pull.EmulatorHost)...)
		if err != nil {
			return nil, fmt.Errorf("PUBSUB_SUBSCRIPTIONS: pubsub client: %w", err)
		}
		w.closers = append(w.closers, ps.Close)
		w.src = pubsubpull.New(pubsubpull.Config{Client: ps.SubscriptionAdminClient,
			Subscriptions: cfg.Pull.Subscriptions, Processor: w.core,
			MaxOutstanding: cfg.Pull.MaxOutstanding, Logger: w.log})
	case DeliveryKafka:
		w.src = &kafkaTransport{src: kafka, core: w.core, log: w.summaryLog, interval: cfg.SummaryInterval}
	default:
		return nil, fmt.Errorf("DELIVERY: %q unknown", cfg.Delivery)
	}

	if w.ln, err = net.Listen("tcp", ":"+cfg.Port); err != nil {
		return nil, fmt.Errorf("PORT: %w", err)
	}
	return w, nil
}

// pubsubOptions connects to a fake Pub/Sub at host without TLS or
// credentials, or to Google with the default credentials when host is "".
// The client library reads PUBSUB_EMULATOR_HOST itself too, but only from
// the process environment.
func pubsubOptions(host string) []option.ClientOption {
	if host == "" {
		return nil
	}
	return []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
}

// Addr is the address /metrics and /healthz are served on.
func (w *Worker) Addr() string { return w.ln.Addr().String() }

// Metrics returns the core's metrics.
func (w *Worker) Metrics() *pipeline.Metrics { return w.metrics }

// Handler serves /metrics (the core's, the store's and the transport's
// counters, Prometheus text) and /healthz (200 only while the cache answers
// and the transport is connected, else 503 saying which is not).
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", metrics.ContentType)
		err := w.metrics.WritePrometheus(rw)
		if err == nil {
			err = w.store.WritePrometheus(rw)
		}
		if err == nil {
			err = w.src.WritePrometheus(rw)
		}
		if err != nil {
			w.log.WarnContext(r.Context(), "writing /metrics failed", "err", err.Error())
		}
	})
	mux.HandleFunc("GET /healthz", w.check.Healthz(func() string {
		if !w.src.Connected() {
			return "queue not connected"
		}
		return ""
	}))
	return mux
}

// drainGrace bounds the final steps after the transport has drained: the
// store's flush and the HTTP server's shutdown.
const drainGrace = 8 * time.Second

// Run serves /metrics and /healthz, logs the summaries, and runs the
// transport until ctx ends; then it drains (the transport stops receiving
// and finishes the batches in flight), flushes the checkpoint, writes the
// last summary and releases everything. It returns the transport's error,
// if any (a subscription that cannot be pulled).
func (w *Worker) Run(ctx context.Context) error {
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(w.ln) }()

	sumCtx, stopSummaries := context.WithCancel(context.Background())
	summariesDone := make(chan struct{})
	go func() {
		defer close(summariesDone)
		pipeline.RunSummaries(sumCtx, pipeline.NewSummarizer(w.metrics), w.cfg.SummaryInterval, pipeline.LogSummary(w.summaryLog))
	}()

	// A cache that does not answer is logged once, naming the setting; the
	// transport runs anyway and nacks until it answers (no crash loop).
	answered := w.check.AtStart(ctx, w.log, "changes are not acknowledged (they are redelivered)")
	var loaderDone <-chan struct{}
	if w.loader != nil {
		loaderDone = w.loader.Start(ctx, answered, schema.StartTimeout, sumCtx)
	} else {
		noLoader := make(chan struct{})
		close(noLoader)
		loaderDone = noLoader
	}
	srcErr := w.src.Run(ctx)

	closeCtx, cancel := context.WithTimeout(context.Background(), drainGrace)
	defer cancel()
	var errs []error
	if srcErr != nil {
		errs = append(errs, srcErr)
	}
	if err := w.store.Close(closeCtx); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	stopSummaries()
	<-summariesDone
	<-loaderDone
	if err := srv.Shutdown(closeCtx); err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	if err := w.closeClients(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeClients closes what New opened, last first.
func (w *Worker) closeClients() error {
	var errs []error
	for i := len(w.closers) - 1; i >= 0; i-- {
		if err := w.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	w.closers = nil
	if w.ln != nil {
		w.ln.Close()
	}
	return errors.Join(errs...)
}

// redisBackend is the Redis store as a worker backend.
type redisBackend struct {
	*redisstore.Store
	client *redis.Client
}

func (b *redisBackend) Ping(ctx context.Context) error { return b.client.Ping(ctx).Err() }

func (b *redisBackend) WritePrometheus(w io.Writer) error {
	return svcenv.WriteStoreMetrics(w, b.Stats())
}

// memcacheBackend is the memcached store as a worker backend.
type memcacheBackend struct {
	*memcachestore.Store
	client *memcachestore.Client
}

func (b *memcacheBackend) Ping(ctx context.Context) error { return b.client.Ping(ctx) }

func (b *memcacheBackend) WritePrometheus(w io.Writer) error {
	return svcenv.WriteMemcacheStoreMetrics(w, b.Stats())
}
