package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
)

// runRun runs the local pipeline: generator -> in-process Pub/Sub -> push
// bridge -> the push function (a child process) -> Redis, with a progress
// line, until -events changes are applied or Ctrl-C.
func runRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := localrun.Config{Out: stdout}
	fs.StringVar(&cfg.RedisURL, "redis", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"), "Redis URL (default $REDIS_URL or the local server)")
	fs.StringVar(&cfg.Prefix, "prefix", "local:", "cache key prefix of the run; its keys are deleted first")
	fs.IntVar(&cfg.Events, "events", 0, "stop after this many changes are applied (0: run until Ctrl-C)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "changes per second (0: as fast as the pipeline goes)")
	seed := fs.Uint64("seed", 1, "generator seed")
	fs.IntVar(&cfg.Keys, "keys", 1000, "distinct keys per table")
	format := fs.String("format", string(changegen.FormatCompact), "Debezium message profile: compact (flattened schemaless rows, no ordering key) or full (schema envelopes, ordering keys, Debezium's headers)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "push requests in flight")
	fs.StringVar(&cfg.FunctionBin, "function", "", "prebuilt push function binary (default: go build ./function/cmd)")
	fs.IntVar(&cfg.Port, "port", 0, "function port (0: a free port)")
	fs.StringVar(&cfg.BridgeAddr, "bridge", "127.0.0.1:0", "serve the bridge's counters at http://ADDR/bridge (empty: don't)")
	fs.StringVar(&cfg.ExpectedPath, "expected", filepath.Join(firstNonEmpty(getenv("TMPDIR"), "/tmp"), "cloudsql-cache-expected.jsonl"),
		"write the generator's final state here, for cachectl verify (empty: don't)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	if cfg.Events < 0 {
		return fmt.Errorf("run: -events must not be negative")
	}
	cfg.Seed = *seed
	f, err := changegen.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	cfg.Format = f
	_, err = localrun.Run(ctx, cfg)
	return err
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
