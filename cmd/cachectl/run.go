package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
)

// localRedisURL is the Redis database local runs use by default: DB 15, so a
// run clears its prefix in a database of its own, not in DB 0 where other
// work on the machine's Redis usually lives.
const localRedisURL = "redis://127.0.0.1:6379/15"

// localMemcacheAddr is the memcached that scripts/services.sh starts.
const localMemcacheAddr = "127.0.0.1:11211"

// localMySQLDSN is the MariaDB that scripts/services.sh starts, where a run
// keeps its tables in a database of their own (localrun.RunDatabase).
const localMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// runRun runs the local pipeline: generator -> in-process Pub/Sub -> push
// bridge -> the push function (a child process) -> Redis, or with -delivery
// pull generator -> Pub/Sub fake -> the worker (a child process) -> Redis,
// or with -delivery kafka generator -> Kafka fake (kfake) -> the worker as a
// consumer group -> Redis, with progress,
// until -events changes are applied or Ctrl-C, which drains and ends with
// the summary (exit 0). A second Ctrl-C ends the drain at once.
func runRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := localrun.Config{Out: stdout}
	fs.StringVar(&cfg.Cache, "cache", localrun.CacheRedis, "the cache: redis, or memcached (no column registry there: key: and types: go in the cache config; rejected messages are parked in a topic of the run's Pub/Sub or Kafka fake)")
	memcache := fs.String("memcache", localMemcacheAddr, "memcached nodes host:port,... (-cache memcached); the run deletes every item it can write there first")
	fs.StringVar(&cfg.RedisURL, "redis", localRedisURL, "Redis URL; the run deletes its prefix's keys there first (default: DB 15 of the local server, kept for local runs)")
	fs.StringVar(&cfg.Prefix, "prefix", "local:", "cache key prefix of the run; its keys are deleted first")
	fs.IntVar(&cfg.Events, "events", 0, "stop after this many changes are applied (0: run until Ctrl-C)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "changes per second (0: as fast as the pipeline goes)")
	seed := fs.Uint64("seed", 1, "generator seed")
	fs.IntVar(&cfg.Keys, "keys", 1000, "distinct keys per table")
	fs.Float64Var(&cfg.Malformed, "malformed", 0, "share of extra malformed messages to publish (each is parked and counted as rejected)")
	format := fs.String("format", string(changegen.FormatCompact), "Debezium message profile: compact (flattened schemaless rows, no ordering key) or full (schema envelopes, ordering keys, Debezium's headers)")
	fs.StringVar(&cfg.MySQLDSN, "mysql", localMySQLDSN, "MySQL (or MariaDB) where the run creates its tables, in database "+localrun.RunDatabase+", and syncs the column registry from them as `cachectl schema sync` does (empty: key: and types: in the cache config instead)")
	fs.StringVar(&cfg.Delivery, "delivery", localrun.DeliveryPush, "how changes reach the cache: push (the push bridge POSTs each to the push function), pull (the worker streams them from the Pub/Sub fake in batches) or kafka (the worker consumes them from a Kafka fake as a consumer group)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "push requests in flight")
	fs.StringVar(&cfg.FunctionBin, "function", "", "push function binary, such as one built from ./function/cmd (default: this cachectl, as `cachectl function`)")
	fs.StringVar(&cfg.WorkerBin, "worker", "", "worker binary, for -delivery pull and kafka, such as one built from ./worker/cmd (default: this cachectl, as `cachectl worker`)")
	fs.IntVar(&cfg.Port, "port", 0, "function or worker port (0: a free port)")
	fs.StringVar(&cfg.ControlAddr, "bridge", "127.0.0.1:0", "serve the run's control endpoint (bridge counters for status, cuts for verify) at ADDR (empty: don't)")
	fs.StringVar(&cfg.ExpectedPath, "expected", filepath.Join(os.TempDir(), "cloudsql-cache-expected.jsonl"),
		"write the generator's final state here, for cachectl verify (empty: don't)")
	fs.DurationVar(&cfg.DrainTimeout, "drain", localrun.DefaultDrainTimeout, "after Ctrl-C, how long to let published changes drain")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("run: unexpected arguments %q", fs.Args())
	}
	if cfg.Events < 0 {
		return usagef("run: -events must not be negative")
	}
	switch cfg.Delivery {
	case localrun.DeliveryPush, localrun.DeliveryPull, localrun.DeliveryKafka:
	default:
		return usagef("run: -delivery %q: push, pull or kafka", cfg.Delivery)
	}
	switch cfg.Cache {
	case localrun.CacheRedis:
	case localrun.CacheMemcached:
		cfg.MemcacheAddrs = strings.Split(*memcache, ",")
	default:
		return usagef("run: -cache %q: redis or memcached", cfg.Cache)
	}
	if cfg.Malformed < 0 || cfg.Malformed > 1 {
		return usagef("run: -malformed must be between 0 and 1")
	}
	cfg.Seed = *seed
	if cfg.FunctionBin == "" || cfg.WorkerBin == "" {
		// The function and the worker run as child processes (the chaos
		// test kills them); this binary carries both, so a built cachectl
		// needs no source tree.
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("run: finding this binary to start the function or worker: %w", err)
		}
		if cfg.FunctionBin == "" {
			cfg.FunctionBin, cfg.FunctionArgs = exe, []string{"function"}
		}
		if cfg.WorkerBin == "" {
			cfg.WorkerBin, cfg.WorkerArgs = exe, []string{"worker"}
		}
	}
	f, err := changegen.ParseFormat(*format)
	if err != nil {
		return usagef("run: %v", err)
	}
	cfg.Format = f
	cfg.StatePath = localrun.StatePath(getenv("CACHECTL_STATE_DIR"))
	cfg.Command = selfCommand()
	if out, ok := stdout.(*os.File); ok && isTerminal(out) {
		cfg.Live = true
		// Ctrl-C reaches this process only, not make or go run above it,
		// so `make run` ends with the run's exit status (0), not make's
		// "Interrupt".
		defer claimTerminal()()
	}
	abort, stopAbort := secondInterrupt()
	defer stopAbort()
	cfg.Abort = abort
	_, err = localrun.Run(ctx, cfg)
	return err
}

// secondInterrupt returns a channel closed by the second SIGINT or SIGTERM
// (the first one ends the run's context and starts the drain).
func secondInterrupt() (<-chan struct{}, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	abort, done := make(chan struct{}), make(chan struct{})
	go func() {
		for n := 0; ; {
			select {
			case <-sigs:
				if n++; n == 2 {
					close(abort)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return abort, func() { signal.Stop(sigs); close(done) }
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// selfCommand is how hints name this tool: "go run ./cmd/cachectl" when it
// runs from go run's build cache, else "cachectl".
func selfCommand() string {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/cachectl"
	}
	return "cachectl"
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
