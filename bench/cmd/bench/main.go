// Command bench is `make bench`: the end-to-end benchmark of the push
// function against the naive baseline, an empty HTTP handler and the apply
// script alone. Run it from the module root (go run ./bench/cmd/bench). It
// builds ./function/cmd, ./bench/naive and ./bench/floor into a temporary
// directory, starts them one at a time on 127.0.0.1 with GOMAXPROCS=1 (-procs;
// a Cloud Run instance here has 1 vCPU) against the machine's Redis under a
// bench-only key prefix (deleted afterwards), and measures, with events of
// the 4-column customers table unless said otherwise:
//
//   - closed loops at concurrency 1, 8, 50 and 200 with schema-enveloped
//     events (events/s, latency, function CPU and Redis CPU per event),
//     concurrency 50 with the 18-column orders table's schema-enveloped
//     events, and concurrency 50 with schemaless events;
//   - an open loop at 5,000 events/s: p50 and p99 latency from the
//     scheduled send time;
//   - the naive handler at concurrency 50;
//   - the empty handler (bench/floor) at concurrency 50 and in the open
//     loop: the net/http floor under the function's CPU and latency;
//   - redis-benchmark calling the apply script by EVALSHA, one call per
//     round trip at concurrency 50, with one change a call and with 8:
//     changes/s and Redis CPU per change.
//
// With each function run it reads the store's counters from /metrics, so it
// reports how many changes each apply script call carried.
//
// It prints the "bench:", "bench-noschema:", "bench-floor:" and
// "bench-redis:" summary lines and writes the table into docs/performance.md
// between the bench:sweep markers. With -cpuprofile it instead profiles the function
// under the concurrency-50 load.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) == 2 && os.Args[1] == kfakeServeArg {
		err = serveKfake(ctx, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	redisAddr  string
	private    bool // start a private redis-server instead of using redisAddr
	doc        string
	events     int           // events per closed-loop point
	pointTime  time.Duration // cap per closed-loop point
	sweep      []int
	rate       float64
	rateTime   time.Duration
	evalCalls  int
	procs      int // GOMAXPROCS of the started servers; 0 leaves it to Go
	cpuprofile string
	// pullEvents is the events of each pull point; pullProfile, when set,
	// is where the pull worker's CPU profile goes.
	pullEvents  int
	pullProfile string
	// kafkaProfile, when set, is where the Kafka worker's CPU profile goes.
	kafkaProfile string
	// memcached adds the push function over a private memcached (-cache memcached).
	memcached bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	fs.StringVar(&c.redisAddr, "redis", "127.0.0.1:6379", "Redis address (keys go under a bench-only prefix, removed afterwards)")
	fs.BoolVar(&c.private, "private-redis", false, "start a private redis-server on a free port, so other clients' work does not count as Redis CPU")
	fs.StringVar(&c.doc, "doc", "docs/performance.md", "Markdown file to write the table into, between the bench:sweep markers (empty: do not write)")
	fs.IntVar(&c.events, "n", 20000, "events per closed-loop point")
	fs.DurationVar(&c.pointTime, "d", 8*time.Second, "time cap per closed-loop point")
	sweep := fs.String("sweep", "1,8,50,200", "closed-loop concurrencies; must include 50")
	fs.Float64Var(&c.rate, "rate", 5000, "open-loop offered rate, events/s")
	fs.DurationVar(&c.rateTime, "rate-d", 8*time.Second, "open-loop duration")
	fs.IntVar(&c.evalCalls, "evalsha-n", 100000, "redis-benchmark EVALSHA calls")
	fs.IntVar(&c.procs, "procs", 1, "GOMAXPROCS of the function, naive and empty-handler servers (0: Go's default); the load generator is not limited")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "only profile the function under the concurrency-50 load, writing the CPU profile here")
	fs.IntVar(&c.pullEvents, "pull-n", 30000, "events per streaming-pull worker point")
	fs.StringVar(&c.pullProfile, "pull-cpuprofile", "", "also write a CPU profile of the pull worker during its schema point here")
	fs.StringVar(&c.kafkaProfile, "kafka-cpuprofile", "", "also write a CPU profile of the Kafka worker during its schema point here")
	cache := fs.String("cache", "redis", "redis, or memcached: also measure the push function with CACHE_BACKEND=memcached on a private memcached -M")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	has50 := false
	for _, s := range strings.Split(*sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return c, fmt.Errorf("-sweep %q: want positive integers", *sweep)
		}
		has50 = has50 || n == 50
		c.sweep = append(c.sweep, n)
	}
	if !has50 {
		return c, errors.New("-sweep must include 50: the headline figures are at concurrency 50")
	}
	if c.events < 1000 || c.rate <= 0 || c.evalCalls < 1000 {
		return c, errors.New("-n and -evalsha-n must be at least 1000 and -rate positive")
	}
	switch *cache {
	case "redis":
	case "memcached":
		c.memcached = true
	default:
		return c, fmt.Errorf("-cache %q: want redis or memcached", *cache)
	}
	if c.procs < 0 {
		return c, errors.New("-procs must be 0 (Go's default) or positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the module root (go run ./bench/cmd/bench)")
	}
	ticks, err := bench.ClockTicks(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "cloudsql-cache-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.private {
		addr, stop, err := startRedis(ctx, tmp)
		if err != nil {
			return err
		}
		defer stop()
		cfg.redisAddr = addr
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redisAddr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.redisAddr, err)
	}

	prefix := fmt.Sprintf("bench:%d:", time.Now().UnixNano())
	defer func() {
		n, err := deletePrefix(context.WithoutCancel(ctx), rdb, prefix)
		if err != nil {
			fmt.Fprintf(stderr, "bench: cleaning %s*: %v\n", prefix, err)
			return
		}
		fmt.Fprintf(stderr, "bench: removed %d keys under %s\n", n, prefix)
	}()
	b := &bencher{cfg: cfg, rdb: rdb, ticks: ticks, tmp: tmp, prefix: prefix, stderr: stderr}
	if cfg.cpuprofile != "" {
		return b.profile(ctx)
	}
	return b.all(ctx, stdout)
}

// evalBatch is the changes per EVALSHA of the batched redis-benchmark run:
// fewer than the function's calls carry at concurrency 50 here (about 15),
// so the figure is not flattered.
const evalBatch = 8

// bencher holds one benchmark run.
type bencher struct {
	cfg    config
	rdb    *redis.Client
	ticks  int
	tmp    string
	prefix string
	stderr io.Writer
}

// point is one measured load.
type point struct {
	label      string
	res        bench.LoadResult
	cpuUs      float64      // server process CPU per answered event, µs
	redisUs    float64      // Redis server CPU per answered event, µs
	dataBytes  int          // mean Pub/Sub data bytes per event
	perCall    float64      // changes per apply script call (function only; redis-benchmark: per EVALSHA)
	evalPerSec float64      // redis-benchmark only: changes applied per second
	worker     *workerPoint // pull and Kafka worker rows only
}

func (b *bencher) all(ctx context.Context, stdout io.Writer) error {
	bins, err := b.build(ctx, "./function/cmd", "./bench/naive", "./bench/floor", "./worker/cmd", "./cmd/pubsubfake")
	if err != nil {
		return err
	}
	fnPrefix := b.prefix + "fn:"
	fn, err := start(ctx, bins[0], fnPrefix, b.redisURL(), filepath.Join(b.tmp, "function.log"), b.procsEnv()...)
	if err != nil {
		return err
	}
	defer fn.stop()
	fn.metrics = true

	schema, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return err
	}
	// Warm-up: connections, the script cache, the allocator; not measured.
	if _, err := b.measure(ctx, "warm-up", fn, schema.Batch(2000), bench.LoadConfig{Concurrency: 50}); err != nil {
		return err
	}
	closed50 := bench.LoadConfig{Concurrency: 50, Duration: b.cfg.pointTime}
	var sweep []point
	var at50 point
	for _, c := range b.cfg.sweep {
		p, err := b.measure(ctx, fmt.Sprintf("c=%d", c), fn, schema.Batch(b.cfg.events), bench.LoadConfig{Concurrency: c, Duration: b.cfg.pointTime})
		if err != nil {
			return err
		}
		sweep = append(sweep, p)
		if c == 50 {
			at50 = p
		}
	}
	// Each later generator starts above the previous one's positions, so
	// its changes are applied, not answered as stale.
	wideOpts := bench.DefaultEventOptions(true)
	wideOpts.Table = "orders"
	wide, err := bench.NewGenerator(wideOpts, schema.Pos())
	if err != nil {
		return err
	}
	widePoint, err := b.measure(ctx, "c=50 orders (18 cols)", fn, wide.Batch(b.cfg.events), closed50)
	if err != nil {
		return err
	}
	noschema, err := bench.NewGenerator(bench.DefaultEventOptions(false), wide.Pos())
	if err != nil {
		return err
	}
	noPoint, err := b.measure(ctx, "c=50 no schema", fn, noschema.Batch(b.cfg.events), closed50)
	if err != nil {
		return err
	}
	later, err := bench.NewGenerator(bench.DefaultEventOptions(true), noschema.Pos())
	if err != nil {
		return err
	}
	open, err := b.measure(ctx, fmt.Sprintf("open %g/s", b.cfg.rate), fn,
		later.Batch(int(b.cfg.rate*b.cfg.rateTime.Seconds())), bench.LoadConfig{Rate: b.cfg.rate, Duration: b.cfg.rateTime})
	if err != nil {
		return err
	}
	if err := b.verifyApplied(ctx, fnPrefix); err != nil {
		return err
	}
	fn.stop()

	// The naive handler and the floor ignore versions, so they take the
	// headline's schema-enveloped customers events from where the sweep
	// left off.
	naive, err := b.measureServer(ctx, bins[1], "naive", false, loadRun{"naive c=50", schema.Batch(b.cfg.events), closed50})
	if err != nil {
		return err
	}
	naivePoint := naive[0]
	// The floor also takes the open loop: the latency this machine gives
	// an empty handler is the bar the function's is measured against.
	floor, err := b.measureServer(ctx, bins[2], "floor", true,
		loadRun{"net/http empty handler c=50", schema.Batch(b.cfg.events), closed50},
		loadRun{fmt.Sprintf("net/http empty handler open %g/s", b.cfg.rate), schema.Batch(int(b.cfg.rate * b.cfg.rateTime.Seconds())), bench.LoadConfig{Rate: b.cfg.rate, Duration: b.cfg.rateTime}})
	if err != nil {
		return err
	}
	floorPoint, floorOpen := floor[0], floor[1]

	row := noschema.Next()
	eval, err := b.evalsha(ctx, row, 1)
	if err != nil {
		return err
	}
	eval8, err := b.evalsha(ctx, row, evalBatch)
	if err != nil {
		return err
	}

	pullSchema, pullNoSchema, err := b.pullPoints(ctx, bins[3], bins[4])
	if err != nil {
		return err
	}
	kafkaSchema, kafkaNoSchema, kafkaCodecPoints, err := b.kafkaPoints(ctx, bins[3])
	if err != nil {
		return err
	}
	extra := append([]point{open, naivePoint, floorPoint, floorOpen, eval, eval8, pullSchema, pullNoSchema, kafkaSchema, kafkaNoSchema}, kafkaCodecPoints...)
	var mc point
	if b.cfg.memcached {
		if mc, err = b.memcachedPoint(ctx, bins[0]); err != nil {
			return err
		}
		extra = append(extra, mc)
	}

	fmt.Fprintf(stdout, "bench: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f redis_cpu_us_per_evalsha=%.1f p50_ms=%.2f p99_ms=%.2f naive_events_per_sec=%.0f redis_evalsha_per_sec=%.0f\n",
		at50.res.EventsPerSec(), at50.cpuUs, at50.redisUs, eval.redisUs, ms(open.res.Quantile(0.5)), ms(open.res.Quantile(0.99)), naivePoint.res.EventsPerSec(), eval.evalPerSec)
	fmt.Fprintf(stdout, "bench-noschema: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f\n",
		noPoint.res.EventsPerSec(), noPoint.cpuUs, noPoint.redisUs)
	fmt.Fprintf(stdout, "bench-floor: http_floor_cpu_us_per_event=%.1f handler_cpu_us_over_floor=%.1f floor_open_p50_ms=%.2f floor_open_p99_ms=%.2f\n",
		floorPoint.cpuUs, at50.cpuUs-floorPoint.cpuUs, ms(floorOpen.res.Quantile(0.5)), ms(floorOpen.res.Quantile(0.99)))
	fmt.Fprintf(stdout, "bench-redis: changes_per_call=%.1f redis_cpu_us_per_change_evalsha%d=%.1f evalsha%d_changes_per_sec=%.0f\n",
		at50.perCall, evalBatch, eval8.redisUs, evalBatch, eval8.evalPerSec)

	fmt.Fprintf(stdout, "bench-pull: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f changes_per_call=%.1f p99_ms=%.2f noschema_events_per_sec=%.0f noschema_cpu_us_per_event=%.1f noschema_redis_cpu_us_per_event=%.1f\n",
		pullSchema.worker.perSec, pullSchema.cpuUs, pullSchema.redisUs, pullSchema.perCall, ms(pullSchema.worker.p99),
		pullNoSchema.worker.perSec, pullNoSchema.cpuUs, pullNoSchema.redisUs)
	fmt.Fprintf(stdout, "bench-pull-ratios: cpu_vs_push_saturation=%.2f redis_per_change_vs_evalsha1=%.2f (targets: at most 0.33 and 0.25)\n",
		pullSchema.cpuUs/at50.cpuUs, pullSchema.redisUs/eval.redisUs)
	fmt.Fprint(stdout, kafkaLines(kafkaSchema, kafkaNoSchema, at50, eval, kafkaCodecPoints))
	if b.cfg.memcached {
		fmt.Fprintf(stdout, "bench-memcached: events_per_sec=%.0f cpu_us_per_event=%.1f memcached_cpu_us_per_event=%.1f changes_per_call=%.1f redis_events_per_sec=%.0f redis_cpu_us_per_event=%.1f redis_server_cpu_us_per_event=%.1f\n",
			mc.res.EventsPerSec(), mc.cpuUs, mc.redisUs, mc.perCall, at50.res.EventsPerSec(), at50.cpuUs, at50.redisUs)
	}

	if b.cfg.doc == "" {
		return nil
	}
	old, err := os.ReadFile(b.cfg.doc)
	if err != nil {
		return err
	}
	desc := tableDesc{cores: runtime.NumCPU(), procs: b.cfg.procs, keys: bench.DefaultEventOptions(true).Keys,
		redis: "the shared server at " + b.cfg.redisAddr + " (other clients' work counts as Redis CPU)"}
	if b.cfg.private {
		desc.redis = "a private redis-server (-private-redis)"
	}
	table := sweepTable(time.Now(), desc, sweep, widePoint, noPoint, extra)
	updated, err := replaceSweep(old, table)
	if err != nil {
		return err
	}
	return os.WriteFile(b.cfg.doc, updated, 0o644)
}

// procsEnv is the environment that sets the started servers' GOMAXPROCS.
func (b *bencher) procsEnv() []string {
	if b.cfg.procs == 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(b.cfg.procs)}
}

// loadRun is one load of measureServer.
type loadRun struct {
	label  string
	bodies [][]byte
	lc     bench.LoadConfig
}

// measureServer starts bin (under its own key prefix, logging to
// name.log), measures each run in turn (after a warm-up at concurrency 50 of
// up to 2,000 of the first run's bodies, like the function's, if warm) and
// stops it.
func (b *bencher) measureServer(ctx context.Context, bin, name string, warm bool, runs ...loadRun) ([]point, error) {
	srv, err := start(ctx, bin, b.prefix+name+":", b.redisURL(), filepath.Join(b.tmp, name+".log"), b.procsEnv()...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if warm {
		if _, err := b.measure(ctx, "warm-up", srv, runs[0].bodies[:min(2000, len(runs[0].bodies))], bench.LoadConfig{Concurrency: 50}); err != nil {
			return nil, err
		}
	}
	points := make([]point, len(runs))
	for i, r := range runs {
		if points[i], err = b.measure(ctx, r.label, srv, r.bodies, r.lc); err != nil {
			return nil, err
		}
	}
	return points, nil
}

// tableDesc is what the README table's preamble says about the run.
type tableDesc struct {
	cores int    // the machine's
	procs int    // GOMAXPROCS of the servers, 0: Go's default
	keys  int    // rows the events cycle over
	redis string // which Redis server, and whether others share it
}

// workerRowsNote says what the pull, Kafka and memcached rows measure.
const workerRowsNote = "The `pull` and `kafka` rows are worker/cmd (DELIVERY=pull or kafka, GOMAXPROCS as the servers) with its queue's fake in a process of its own: events/s from the first event fed to the last finished, server CPU the worker's; p50/p99 are the pull worker's pipeline lag (time in the queue included); the Kafka events are preloaded while the worker is stopped, so it starts at saturation and has no lag figure, and are compressed as named (lz4 is what Debezium's producer uses here). The `memcached` row is the function with CACHE_BACKEND=memcached on a private `memcached -M`, whose CPU is in the Redis column."

// sweepTable is the README's generated Markdown: the sweep, the wide-row
// point, the schemaless point, then the extra rows.
func sweepTable(now time.Time, d tableDesc, sweep []point, wide, noschema point, extra []point) string {
	var s strings.Builder
	procs := fmt.Sprintf("GOMAXPROCS=%d (`-procs %d`; the deployed instances have 1 vCPU)", d.procs, d.procs)
	if d.procs == 0 {
		procs = fmt.Sprintf("GOMAXPROCS left to Go's default (`-procs 0`: %d)", d.cores)
	}
	fmt.Fprintf(&s, "Generated by `make bench` on %s: one %d-core machine shared by the load generator, the server under test, Redis and other work, so events/s and latency vary a lot from run to run; CPU per event is the steady figure. The servers (function, naive handler, empty handler) ran with %s; the load generator was not limited. Redis: %s. ",
		now.UTC().Format("2006-01-02"), d.cores, procs, d.redis)
	fmt.Fprintf(&s, "Events are Debezium MySQL changes (creates, then updates with their before image) to the 4-column `customers` table over %d rows: schema-enveloped ones carry %d bytes of data, schemaless ones %d. The `orders (18 cols)` row posts schema-enveloped changes to an 18-column table of mixed MySQL types instead, %d bytes of data. `net/http empty handler` is bench/floor, a server that reads each body and answers 204: the floor under the function's CPU per event. Redis CPU per event is per change; the `redis-benchmark` rows call the apply script with one change a call and with %d, keeping Redis busy: their events/s are changes applied a second. ",
		d.keys, sweep[0].dataBytes, noschema.dataBytes, wide.dataBytes, evalBatch)
	s.WriteString(workerRowsNote + "\n\n")
	s.WriteString("| run | events/s | p50 ms | p99 ms | server CPU µs/event | Redis CPU µs/event | changes per Redis call | answers |\n")
	s.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	rows := append(append(append([]point{}, sweep...), wide, noschema), extra...)
	for _, p := range rows {
		perCall := ""
		if p.perCall > 0 {
			perCall = fmt.Sprintf("%.1f", p.perCall)
		}
		if w := p.worker; w != nil {
			lag := " | "
			if w.p99 > 0 {
				lag = fmt.Sprintf("%.2f | %.2f", ms(w.p50), ms(w.p99))
			}
			fmt.Fprintf(&s, "| %s | %.0f | %s | %.1f | %.1f | %s | %.0f a batch, %.0f nacked |\n", p.label, w.perSec,
				lag, p.cpuUs, p.redisUs, perCall, w.batch, w.nacked)
			continue
		}
		if p.evalPerSec > 0 {
			fmt.Fprintf(&s, "| %s | %.0f | | | | %.1f | %s | |\n", p.label, p.evalPerSec, p.redisUs, perCall)
			continue
		}
		fmt.Fprintf(&s, "| %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s | %s |\n", p.label, p.res.EventsPerSec(),
			ms(p.res.Quantile(0.5)), ms(p.res.Quantile(0.99)), p.cpuUs, p.redisUs, perCall, p.res.StatusString())
	}
	return s.String()
}

// measure runs one load against srv and charges the CPU used by srv and by
// Redis meanwhile to the answered events.
func (b *bencher) measure(ctx context.Context, label string, srv *server, bodies [][]byte, lc bench.LoadConfig) (point, error) {
	lc.URL, lc.Bodies = srv.url, bodies
	p := point{label: label, dataBytes: meanDataBytes(sample(bodies, 200))}
	u0, err := b.usage(ctx, srv)
	if err != nil {
		return p, err
	}
	res, err := bench.Load(ctx, lc)
	if err != nil {
		return p, err
	}
	u1, err := b.usage(ctx, srv)
	if err != nil {
		return p, err
	}
	if u1.calls > u0.calls {
		p.perCall = (u1.changes - u0.changes) / (u1.calls - u0.calls)
	}
	p.res = res
	ok := res.OK()
	fmt.Fprintf(b.stderr, "bench: %-27s %6d events %7.0f/s p50 %7.2f ms p99 %8.2f ms cpu %6.1f µs redis %5.1f µs loadgen %5.1f µs [%s]\n",
		label, res.Sent, res.EventsPerSec(), ms(res.Quantile(0.5)), ms(res.Quantile(0.99)),
		perEvent(u1.server-u0.server, ok), perEvent(u1.redis-u0.redis, ok), perEvent(u1.loadgen-u0.loadgen, ok), res.StatusString())
	// A benchmark of errors measures nothing: allow at most 1% non-2xx.
	if ok == 0 || res.Sent-ok > res.Sent/100 {
		return p, fmt.Errorf("%s: %d of %d requests not answered 2xx (first transport error: %v; server log %s)", label, res.Sent-ok, res.Sent, res.FirstErr, srv.logPath)
	}
	p.cpuUs, p.redisUs = perEvent(u1.server-u0.server, ok), perEvent(u1.redis-u0.redis, ok)
	return p, nil
}

// usage is what measure reads before and after a load: the CPU used so far
// by the server, Redis and this process, and the function's apply counters.
type usage struct {
	server, redis, loadgen time.Duration
	calls, changes         float64
}

func (b *bencher) usage(ctx context.Context, srv *server) (u usage, err error) {
	if u.server, err = bench.ProcCPU(srv.pid(), b.ticks); err != nil {
		return u, err
	}
	cacheCPU := srv.cacheCPU
	if cacheCPU == nil {
		cacheCPU = func(ctx context.Context) (time.Duration, error) { return bench.RedisCPU(ctx, b.rdb) }
	}
	if u.redis, err = cacheCPU(ctx); err != nil {
		return u, err
	}
	if u.loadgen, err = bench.ProcCPU(os.Getpid(), b.ticks); err != nil {
		return u, err
	}
	u.calls, u.changes, err = srv.applyCounters()
	return u, err
}

func perEvent(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sample returns up to n bodies spread evenly over all of them (creates
// come first in a batch, updates with their before image later).
func sample(bodies [][]byte, n int) [][]byte {
	if len(bodies) <= n {
		return bodies
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = bodies[i*len(bodies)/n]
	}
	return out
}

// meanDataBytes is the mean decoded message.data size of push envelopes.
func meanDataBytes(bodies [][]byte) int {
	total := 0
	for _, body := range bodies {
		var env struct{ Message struct{ Data string } }
		if json.Unmarshal(body, &env) == nil {
			total += base64.StdEncoding.DecodedLen(len(env.Message.Data))
		}
	}
	return total / max(len(bodies), 1)
}

// verifyApplied checks that the function cached the rows rather than
// parking the events (parked events are also answered 2xx).
func (b *bencher) verifyApplied(ctx context.Context, fnPrefix string) error {
	parked, err := b.rdb.XLen(ctx, redisstore.RejectedStreamKey(fnPrefix)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if parked > 0 {
		return fmt.Errorf("the function parked %d events as rejected: the figures would not measure the apply path", parked)
	}
	// The first key of each table the function was sent.
	for _, row := range []struct{ key, id string }{{"shop.customers:1001", "1001"}, {"shop.orders:1", "1"}} {
		rec, err := b.rdb.HGetAll(ctx, fnPrefix+row.key).Result()
		if err != nil {
			return err
		}
		if len(rec["v"]) != cdc.VersionLen || !strings.HasPrefix(rec["d"], `{"id":`+row.id+`,`) {
			return fmt.Errorf("row %s not cached as expected: %v", row.key, rec)
		}
	}
	return nil
}

// evalsha runs redis-benchmark against the apply script, one EVALSHA per
// round trip carrying perCall changes, over fresh random keys so nearly
// every change writes a row.
func (b *bencher) evalsha(ctx context.Context, sampleBody []byte, perCall int) (point, error) {
	calls := b.cfg.evalCalls / perCall
	p := point{label: fmt.Sprintf("redis-benchmark EVALSHA c=50 -P 1, %d change(s) a call (%d calls)", perCall, calls)}
	if perCall > 1 {
		p.perCall = float64(perCall)
	}
	row, err := afterImage(sampleBody)
	if err != nil {
		return p, err
	}
	host, port, err := net.SplitHostPort(b.cfg.redisAddr)
	if err != nil {
		return p, err
	}
	evalPrefix := fmt.Sprintf("%sevalsha%d:", b.prefix, perCall)
	// The store's own call: the truncate watermark and checkpoint hashes, then per change its
	// record key (fresh for nearly every change) and version, kind,
	// refresh, TTL, table, row.
	var src string
	keys, argv := []string{}, []string{}
	for i := range perCall {
		s, k, a := redisstore.ApplyCommand(evalPrefix, "shop.customers", fmt.Sprintf("%sshop.customers:%d:__rand_int__", evalPrefix, i), cdc.NewVersion(3, 1<<40, 0), []byte(row))
		if i == 0 {
			src, keys = s, k[:redisstore.ApplySharedKeys]
		}
		keys, argv = append(keys, k[redisstore.ApplySharedKeys:]...), append(argv, a...)
	}
	sha, err := b.rdb.ScriptLoad(ctx, src).Result()
	if err != nil {
		return p, err
	}
	args := []string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(calls), "-r", "100000000", "-P", "1", "--csv",
		"EVALSHA", sha, strconv.Itoa(len(keys))}
	args = append(append(args, keys...), argv...)
	r0, err := bench.RedisCPU(ctx, b.rdb)
	if err != nil {
		return p, err
	}
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).CombinedOutput()
	if err != nil {
		return p, fmt.Errorf("redis-benchmark: %v: %s", err, out)
	}
	r1, err := bench.RedisCPU(ctx, b.rdb)
	if err != nil {
		return p, err
	}
	perSec, err := parseBenchmarkCSV(out)
	if err != nil {
		return p, err
	}
	p.evalPerSec = perSec * float64(perCall)
	written, err := countKeys(ctx, b.rdb, evalPrefix)
	if err != nil {
		return p, err
	}
	// -r 100000000 over 100,000 changes: under 0.1% of keys repeat.
	if changes := calls * perCall; written < changes*95/100 {
		return p, fmt.Errorf("redis-benchmark: only %d of %d changes wrote a row: %s", written, changes, out)
	}
	p.redisUs = perEvent(r1-r0, calls*perCall)
	fmt.Fprintf(b.stderr, "bench: %s: %.0f calls/s, redis %.1f µs/change, %d rows written\n", p.label, perSec, p.redisUs, written)
	return p, nil
}

// afterImage returns the after image of a schemaless push envelope: a
// realistic row JSON for the script's row argument.
func afterImage(body []byte) (string, error) {
	var env struct{ Message struct{ Data []byte } }
	if err := json.Unmarshal(body, &env); err != nil {
		return "", err
	}
	var ev struct{ After json.RawMessage }
	if err := json.Unmarshal(env.Message.Data, &ev); err != nil || len(ev.After) == 0 {
		return "", fmt.Errorf("sample event has no after image: %v", err)
	}
	return string(ev.After), nil
}

// parseBenchmarkCSV reads the requests per second from redis-benchmark
// --csv. The test name is the whole command, commas and quotes included, so
// the rate is counted from the end of the row: rps and six latency columns.
func parseBenchmarkCSV(out []byte) (float64, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, `"test","rps"`) || i+1 >= len(lines) {
			continue
		}
		cols := len(strings.Split(line, ","))
		f := strings.Split(lines[i+1], ",")
		if len(f) < cols {
			break
		}
		rps, err := strconv.ParseFloat(strings.Trim(f[len(f)-cols+1], `"`), 64)
		if err != nil || rps <= 0 {
			break
		}
		return rps, nil
	}
	return 0, fmt.Errorf("redis-benchmark printed no rate: %s", out)
}

// profile takes a CPU profile of the function under the concurrency-50
// load (schema-enveloped events), from the net/http/pprof server the
// function binary serves on PPROF_ADDR.
func (b *bencher) profile(ctx context.Context) error {
	bins, err := b.build(ctx, "./function/cmd")
	if err != nil {
		return err
	}
	pprofPort, err := freePort()
	if err != nil {
		return err
	}
	pprofURL := fmt.Sprintf("http://127.0.0.1:%d/", pprofPort)
	fn, err := start(ctx, bins[0], b.prefix+"fn:", b.redisURL(), filepath.Join(b.tmp, "function.log"),
		append(b.procsEnv(), "PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort))...)
	if err != nil {
		return err
	}
	defer fn.stop()
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return err
	}
	if _, err := b.measure(ctx, "warm-up", fn, gen.Batch(2000), bench.LoadConfig{Concurrency: 50}); err != nil {
		return err
	}
	secs := max(1, int(b.cfg.pointTime.Seconds()))
	bodies := gen.Batch(b.cfg.events * 4)
	loadDone := make(chan error, 1)
	go func() {
		_, err := b.measure(ctx, "c=50 profiled", fn, bodies, bench.LoadConfig{Concurrency: 50, Duration: time.Duration(secs+2) * time.Second})
		loadDone <- err
	}()
	resp, err := http.Get(fmt.Sprintf("%sdebug/pprof/profile?seconds=%d", pprofURL, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(b.cfg.cpuprofile)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := <-loadDone; err != nil {
		return err
	}
	fmt.Fprintf(b.stderr, "bench: CPU profile in %s (go tool pprof -top %s)\n", b.cfg.cpuprofile, b.cfg.cpuprofile)
	return nil
}

func (b *bencher) redisURL() string { return "redis://" + b.cfg.redisAddr + "/0" }

// build compiles each package into the temporary directory.
func (b *bencher) build(ctx context.Context, pkgs ...string) ([]string, error) {
	var bins []string
	for _, pkg := range pkgs {
		bin := filepath.Join(b.tmp, filepath.Base(pkg))
		if filepath.Base(pkg) == "cmd" {
			bin = filepath.Join(b.tmp, filepath.Base(filepath.Dir(pkg)))
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		bins = append(bins, bin)
	}
	return bins, nil
}
