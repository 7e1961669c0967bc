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
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// Config configures Run.
type Config struct {
	// RedisURL is the Redis the function writes to.
	RedisURL string
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
	// Concurrency is the bridge's POSTs in flight.
	Concurrency int
	// FunctionBin is a prebuilt function binary; "" builds one.
	FunctionBin string
	// Port is the function's port; 0 picks a free one.
	Port int
	// BridgeAddr, when set, serves the bridge's counters at /bridge there
	// (for `cachectl status -bridge`).
	BridgeAddr string
	// ExpectedPath, when set, receives the generator's final state (JSON
	// lines) for `cachectl verify`.
	ExpectedPath string
	// WorkDir holds the config file, the function binary and its log; ""
	// makes a temporary one.
	WorkDir string
	// Out receives the progress line and the summary.
	Out io.Writer
}

// Summary is what a run did.
type Summary struct {
	// Published counts messages published.
	Published int64
	// Applied counts changes written (rows and tombstones); Stale, Ignored
	// and Rejected the other outcomes, from the function's metrics.
	Applied, Stale, Ignored, Rejected uint64
	// Pending is the bridge's backlog at the end.
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
	return fmt.Sprintf("summary: published=%d applied=%d stale=%d ignored=%d rejected=%d pending=%d "+
		"lag_p50_ms=%s lag_p99_ms=%s events_per_sec=%.0f bytes_per_event=%.0f",
		s.Published, s.Applied, s.Stale, s.Ignored, s.Rejected, s.Pending,
		millis(s.LagP50), millis(s.LagP99), s.EventsPerSec, s.BytesPerEvent)
}

func millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func summarize(st pushbridge.Stats, t Totals, p Produced, elapsed time.Duration) Summary {
	s := Summary{
		Published: st.Published,
		Applied:   t.Applied(),
		Stale:     t.Outcomes[cdc.OutcomeStale],
		Ignored:   t.Outcomes[cdc.OutcomeIgnored],
		Rejected:  t.Outcomes[cdc.OutcomeRejected],
		Pending:   st.Pending,
		LagP50:    t.Lag.Quantile(0.5),
		LagP99:    t.Lag.Quantile(0.99),
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

// progressInterval is how often the progress line refreshes.
const progressInterval = 500 * time.Millisecond

// Run runs the local pipeline until cfg.Events changes are applied or ctx
// is done, printing a refreshing progress line and the summary to cfg.Out.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	out := cfg.Out
	if out == nil {
		out = io.Discard
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

	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return Summary{}, fmt.Errorf("redis: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return Summary{}, fmt.Errorf("redis %s: %w (make run starts one with scripts/services.sh)", cfg.RedisURL, err)
	}
	cleared, err := ClearPrefix(ctx, rdb, cfg.Prefix)
	if err != nil {
		return Summary{}, err
	}

	format := cfg.Format
	if format == "" {
		format = changegen.FormatCompact
	}
	genOpts := format.Apply(changegen.Options{Seed: cfg.Seed, Keys: cfg.Keys})
	gen := changegen.New(genOpts)
	configPath := filepath.Join(work, "cache.yaml")
	if err := os.WriteFile(configPath, gen.CacheConfig(cfg.Prefix), 0o644); err != nil {
		return Summary{}, err
	}
	bin := cfg.FunctionBin
	if bin == "" {
		fmt.Fprintln(out, "building the push function ...")
		if bin, err = BuildFunction(ctx, work); err != nil {
			return Summary{}, err
		}
	}
	port := cfg.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return Summary{}, err
		}
	}
	logPath := filepath.Join(work, "function.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return Summary{}, err
	}
	defer logFile.Close()
	fn := &Function{Bin: bin, Port: port, Output: logFile, Env: []string{
		"REDIS_URL=" + cfg.RedisURL, "CACHE_CONFIG=" + configPath, "CACHE_PREFIX=" + cfg.Prefix, "SUMMARY_INTERVAL=1h",
	}}
	if err := fn.Start(ctx); err != nil {
		return Summary{}, err
	}
	defer fn.Stop()

	ps, err := pushbridge.NewPubSub(ctx, "local")
	if err != nil {
		return Summary{}, err
	}
	defer ps.Close()
	bridge, err := pushbridge.New(ctx, pushbridge.Config{
		PubSub: ps, Topics: gen.Topics(), Endpoint: fn.URL(), Concurrency: cfg.Concurrency, Ordering: genOpts.Ordering,
	})
	if err != nil {
		return Summary{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	bridgeDone := make(chan struct{})
	go func() {
		defer close(bridgeDone)
		_ = bridge.Run(runCtx)
	}()
	defer func() { stop(); <-bridgeDone }()

	bridgeURL := ""
	if cfg.BridgeAddr != "" {
		ln, err := net.Listen("tcp", cfg.BridgeAddr)
		if err != nil {
			return Summary{}, fmt.Errorf("bridge endpoint: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /bridge", bridge)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		bridgeURL = "http://" + ln.Addr().String() + "/bridge"
	}
	fmt.Fprintf(out, "redis %s prefix %q (cleared %d keys); function %s (log %s); bridge %s; %s messages\n",
		cfg.RedisURL, cfg.Prefix, cleared, fn.URL(), logPath, firstNonEmpty(bridgeURL, "in-process"), format)

	type result struct {
		Produced
		err error
	}
	produced := make(chan result, 1)
	go func() {
		p, err := Produce(runCtx, gen, ps, func() int64 { return bridge.Stats().Pending },
			ProduceOptions{Events: cfg.Events, Rate: cfg.Rate, MaxBacklog: 300})
		produced <- result{p, err}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	start := time.Now()
	var prev, last Totals
	var prod *result
	lineLen := 0
	for {
		select {
		case <-ctx.Done():
		case r := <-produced:
			prod = &r
			if r.err != nil {
				return summarize(bridge.Stats(), last, r.Produced, time.Since(start)), r.err
			}
			continue
		case <-tick.C:
		}
		if t, err := Scrape(ctx, client, fn.URL()); err == nil {
			prev, last = last, t
		}
		st := bridge.Stats()
		line := progressLine(st, last, prev, progressInterval)
		fmt.Fprintf(out, "\r%-*s", lineLen, line)
		lineLen = len(line)
		finished := prod != nil && cfg.Events > 0 && bridge.Idle()
		if ctx.Err() != nil || finished {
			break
		}
	}
	stop()
	<-bridgeDone
	if prod == nil {
		r := <-produced // the generator is the producer's until it returns
		prod = &r
	}
	// The last scrape after the bridge stopped counts every answered push.
	if t, err := Scrape(context.Background(), client, fn.URL()); err == nil {
		last = t
	}
	sum := summarize(bridge.Stats(), last, prod.Produced, time.Since(start))
	fmt.Fprintf(out, "\n%s\n", sum)
	var errs []error
	if cfg.ExpectedPath != "" {
		if err := writeExpected(gen, cfg.ExpectedPath); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(out, "expected state: %s (check: go run ./cmd/cachectl verify -prefix %s -expected %s)\n",
				cfg.ExpectedPath, cfg.Prefix, cfg.ExpectedPath)
		}
	}
	if err := fn.Stop(); err != nil {
		errs = append(errs, err)
	}
	return sum, errors.Join(errs...)
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
