package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

// runLoad posts generated push envelopes at the function: a closed loop at
// -c requests in flight, or an open loop at -rate events a second, and
// prints the throughput, latency quantiles and status counts.
func runLoad(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080/", "push endpoint")
	conc := fs.Int("c", 0, "closed loop: requests in flight (default 50 unless -rate is set)")
	rate := fs.Float64("rate", 0, "open loop: events a second, on a fixed schedule")
	n := fs.Int("n", 20000, "events to send (generated before the run)")
	dur := fs.Duration("d", 0, "stop after this long (0: when the events run out)")
	schema := fs.Bool("schema", true, "schema-enveloped events (false: schemas.enable=false)")
	keys := fs.Int("keys", 10000, "distinct rows, cycled")
	startPos := fs.Uint64("start-pos", uint64(time.Now().Unix())*1000, "binlog position of the first event (above earlier runs' so changes apply)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("load: unexpected argument %q", fs.Arg(0))
	}
	if *conc == 0 && *rate == 0 {
		*conc = 50
	}
	if *conc < 0 || *rate < 0 || *n <= 0 {
		return errors.New("load: -c, -rate and -n must be positive")
	}
	opts := bench.DefaultEventOptions(*schema)
	opts.Keys = *keys
	gen, err := bench.NewGenerator(opts, *startPos)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	cfg := bench.LoadConfig{URL: *url, Bodies: gen.Batch(*n), Concurrency: *conc, Rate: *rate, Duration: *dur}
	if *rate > 0 {
		cfg.Concurrency = 0
	}
	res, err := bench.Load(ctx, cfg)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	mode := fmt.Sprintf("closed loop c=%d", *conc)
	if *rate > 0 {
		mode = fmt.Sprintf("open loop rate=%g/s", *rate)
	}
	fmt.Fprintf(stdout, "load: %s events=%d events_per_sec=%.0f p50_ms=%.3f p99_ms=%.3f status=%s\n",
		mode, res.Sent, res.EventsPerSec(), ms(res.Quantile(0.50)), ms(res.Quantile(0.99)), res.StatusString())
	if res.FirstErr != nil {
		fmt.Fprintf(stderr, "load: first transport error: %v\n", res.FirstErr)
	}
	if ok := res.OK(); ok != res.Sent {
		return fmt.Errorf("load: %d of %d requests not answered 2xx", res.Sent-ok, res.Sent)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
