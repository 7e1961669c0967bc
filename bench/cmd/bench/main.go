// Command bench is `make bench`: the end-to-end benchmark of the push
// function against the naive baseline and against the apply script alone.
// Run it from the module root (go run ./bench/cmd/bench). It builds
// ./function/cmd and ./bench/naive into a temporary directory, starts them
// on 127.0.0.1 against the machine's Redis under a bench-only key prefix
// (deleted afterwards), and measures:
//
//   - closed loops at concurrency 1, 8, 50 and 200 with schema-enveloped
//     events (events/s, latency, function CPU and Redis CPU per event), and
//     concurrency 50 with schemaless events;
//   - an open loop at 5,000 events/s: p50 and p99 latency from the
//     scheduled send time;
//   - the naive handler at concurrency 50;
//   - redis-benchmark calling the apply script by EVALSHA, one call per
//     round trip at concurrency 50: calls/s and Redis CPU per call.
//
// It prints the "bench:" and "bench-noschema:" summary lines and writes the
// table into README.md between the bench:sweep markers. With -cpuprofile it
// instead profiles the function under the concurrency-50 load.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
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
	readme     string
	events     int           // events per closed-loop point
	pointTime  time.Duration // cap per closed-loop point
	sweep      []int
	rate       float64
	rateTime   time.Duration
	evalCalls  int
	cpuprofile string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	fs.StringVar(&c.redisAddr, "redis", "127.0.0.1:6379", "Redis address (keys go under a bench-only prefix, removed afterwards)")
	fs.BoolVar(&c.private, "private-redis", false, "start a private redis-server on a free port, so other clients' work does not count as Redis CPU")
	fs.StringVar(&c.readme, "readme", "README.md", "README to write the table into (empty: do not write)")
	fs.IntVar(&c.events, "n", 20000, "events per closed-loop point")
	fs.DurationVar(&c.pointTime, "d", 8*time.Second, "time cap per closed-loop point")
	sweep := fs.String("sweep", "1,8,50,200", "closed-loop concurrencies; must include 50")
	fs.Float64Var(&c.rate, "rate", 5000, "open-loop offered rate, events/s")
	fs.DurationVar(&c.rateTime, "rate-d", 8*time.Second, "open-loop duration")
	fs.IntVar(&c.evalCalls, "evalsha-n", 100000, "redis-benchmark EVALSHA calls")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "only profile the function under the concurrency-50 load, writing the CPU profile here")
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
	cpuUs      float64 // server process CPU per answered event, µs
	redisUs    float64 // Redis server CPU per answered event, µs
	dataBytes  int     // mean Pub/Sub data bytes per event
	evalPerSec float64 // redis-benchmark only
}

func (b *bencher) all(ctx context.Context, stdout io.Writer) error {
	bins, err := b.build(ctx, "./function/cmd", "./bench/naive")
	if err != nil {
		return err
	}
	fnPrefix := b.prefix + "fn:"
	fn, err := start(ctx, bins[0], fnPrefix, b.redisURL(), filepath.Join(b.tmp, "function.log"))
	if err != nil {
		return err
	}
	defer fn.stop()

	schema, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return err
	}
	// Warm-up: connections, the script cache, the allocator; not measured.
	if _, err := b.measure(ctx, "warm-up", fn, schema.Batch(2000), bench.LoadConfig{Concurrency: 50}); err != nil {
		return err
	}
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
	noOpts := bench.DefaultEventOptions(false)
	noschema, err := bench.NewGenerator(noOpts, schema.Pos())
	if err != nil {
		return err
	}
	noPoint, err := b.measure(ctx, "c=50 no schema", fn, noschema.Batch(b.cfg.events), bench.LoadConfig{Concurrency: 50, Duration: b.cfg.pointTime})
	if err != nil {
		return err
	}
	// The open loop continues above the schemaless run's positions, so its
	// changes are applied, not answered as stale.
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

	naive, err := start(ctx, bins[1], b.prefix+"naive:", b.redisURL(), filepath.Join(b.tmp, "naive.log"))
	if err != nil {
		return err
	}
	naivePoint, err := b.measure(ctx, "naive c=50", naive, schema.Batch(b.cfg.events), bench.LoadConfig{Concurrency: 50, Duration: b.cfg.pointTime})
	naive.stop()
	if err != nil {
		return err
	}

	eval, err := b.evalsha(ctx, noschema.Next())
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "bench: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f redis_cpu_us_per_evalsha=%.1f p50_ms=%.2f p99_ms=%.2f naive_events_per_sec=%.0f redis_evalsha_per_sec=%.0f\n",
		at50.res.EventsPerSec(), at50.cpuUs, at50.redisUs, eval.redisUs, ms(open.res.Quantile(0.5)), ms(open.res.Quantile(0.99)), naivePoint.res.EventsPerSec(), eval.evalPerSec)
	fmt.Fprintf(stdout, "bench-noschema: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f\n",
		noPoint.res.EventsPerSec(), noPoint.cpuUs, noPoint.redisUs)

	if b.cfg.readme == "" {
		return nil
	}
	old, err := os.ReadFile(b.cfg.readme)
	if err != nil {
		return err
	}
	redisDesc := "the shared server at " + b.cfg.redisAddr + " (other clients' work counts as Redis CPU)"
	if b.cfg.private {
		redisDesc = "a private redis-server (-private-redis)"
	}
	table := sweepTable(time.Now(), redisDesc, sweep, []point{noPoint, open, naivePoint, eval})
	updated, err := replaceSweep(old, table)
	if err != nil {
		return err
	}
	return os.WriteFile(b.cfg.readme, updated, 0o644)
}

// sweepTable is the README's generated Markdown.
func sweepTable(now time.Time, redisDesc string, sweep, extra []point) string {
	var s strings.Builder
	fmt.Fprintf(&s, "Generated by `make bench` on %s: one 2-core machine shared by the load generator, the function, Redis and other work, so events/s and latency vary a lot from run to run; CPU per event is the steady figure. Redis: %s. Events are Debezium MySQL changes to an 18-column table; schema-enveloped ones carry %d bytes of data, schemaless ones %d.\n\n",
		now.UTC().Format("2006-01-02"), redisDesc, sweep[0].dataBytes, extra[0].dataBytes)
	s.WriteString("| run | events/s | p50 ms | p99 ms | function CPU µs/event | Redis CPU µs/event | answers |\n")
	s.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	for _, p := range append(append([]point{}, sweep...), extra...) {
		if p.evalPerSec > 0 {
			fmt.Fprintf(&s, "| %s | %.0f | | | | %.1f | |\n", p.label, p.evalPerSec, p.redisUs)
			continue
		}
		fmt.Fprintf(&s, "| %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s |\n", p.label, p.res.EventsPerSec(),
			ms(p.res.Quantile(0.5)), ms(p.res.Quantile(0.99)), p.cpuUs, p.redisUs, p.res.StatusString())
	}
	return s.String()
}

// measure runs one load against srv and charges the CPU used by srv and by
// Redis meanwhile to the answered events.
func (b *bencher) measure(ctx context.Context, label string, srv *server, bodies [][]byte, lc bench.LoadConfig) (point, error) {
	lc.URL, lc.Bodies = srv.url, bodies
	conns := lc.Concurrency
	if lc.Rate > 0 {
		conns = 1000
	}
	p := point{label: label, dataBytes: meanDataBytes(sample(bodies, 200))}
	c0, err := bench.ProcCPU(srv.pid(), b.ticks)
	if err != nil {
		return p, err
	}
	r0, err := bench.RedisCPU(ctx, b.rdb)
	if err != nil {
		return p, err
	}
	g0, err := bench.ProcCPU(os.Getpid(), b.ticks)
	if err != nil {
		return p, err
	}
	res, err := bench.Load(ctx, bench.NewClient(conns), lc)
	if err != nil {
		return p, err
	}
	c1, err := bench.ProcCPU(srv.pid(), b.ticks)
	if err != nil {
		return p, err
	}
	r1, err := bench.RedisCPU(ctx, b.rdb)
	if err != nil {
		return p, err
	}
	g1, err := bench.ProcCPU(os.Getpid(), b.ticks)
	if err != nil {
		return p, err
	}
	p.res = res
	ok := res.OK()
	fmt.Fprintf(b.stderr, "bench: %-16s %6d events %7.0f/s p50 %7.2f ms p99 %8.2f ms cpu %6.1f µs redis %5.1f µs loadgen %5.1f µs [%s]\n",
		label, res.Sent, res.EventsPerSec(), ms(res.Quantile(0.5)), ms(res.Quantile(0.99)),
		perEvent(c1-c0, ok), perEvent(r1-r0, ok), perEvent(g1-g0, ok), res.StatusString())
	// A benchmark of errors measures nothing: allow at most 1% non-2xx.
	if ok == 0 || res.Sent-ok > res.Sent/100 {
		return p, fmt.Errorf("%s: %d of %d requests not answered 2xx (first transport error: %v; server log %s)", label, res.Sent-ok, res.Sent, res.FirstErr, srv.logPath)
	}
	p.cpuUs, p.redisUs = perEvent(c1-c0, ok), perEvent(r1-r0, ok)
	return p, nil
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
	parked, err := b.rdb.XLen(ctx, handler.RejectedStreamKey(fnPrefix)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if parked > 0 {
		return fmt.Errorf("the function parked %d events as rejected: the figures would not measure the apply path", parked)
	}
	rec, err := b.rdb.HGetAll(ctx, fnPrefix+"shop.orders:1").Result()
	if err != nil {
		return err
	}
	if len(rec["v"]) != cdc.VersionLen || !strings.HasPrefix(rec["d"], `{"id":1,`) {
		return fmt.Errorf("row shop.orders:1 not cached as expected: %v", rec)
	}
	return nil
}

// evalsha runs redis-benchmark against the apply script, one EVALSHA per
// round trip, over fresh random keys so nearly every call writes a row.
func (b *bencher) evalsha(ctx context.Context, sampleBody []byte) (point, error) {
	p := point{label: fmt.Sprintf("redis-benchmark EVALSHA c=50 -P 1 (%d calls)", b.cfg.evalCalls)}
	row, err := afterImage(sampleBody)
	if err != nil {
		return p, err
	}
	host, port, err := net.SplitHostPort(b.cfg.redisAddr)
	if err != nil {
		return p, err
	}
	evalPrefix := b.prefix + "evalsha:"
	// The store's own call: record key (fresh for nearly every call) and
	// truncate watermark, then version, kind, refresh, TTL, table, row.
	src, keys, argv := redisstore.ApplyCommand(evalPrefix, "shop.orders", evalPrefix+"shop.orders:__rand_int__", cdc.NewVersion(3, 1<<40, 0), []byte(row))
	sha, err := b.rdb.ScriptLoad(ctx, src).Result()
	if err != nil {
		return p, err
	}
	args := []string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(b.cfg.evalCalls), "-r", "100000000", "-P", "1", "--csv",
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
	if p.evalPerSec, err = parseBenchmarkCSV(out); err != nil {
		return p, err
	}
	written, err := countKeys(ctx, b.rdb, evalPrefix)
	if err != nil {
		return p, err
	}
	// -r 100000000 over 100,000 calls: under 0.1% of keys repeat.
	if written < b.cfg.evalCalls*95/100 {
		return p, fmt.Errorf("redis-benchmark: only %d of %d EVALSHA calls wrote a row: %s", written, b.cfg.evalCalls, out)
	}
	p.redisUs = perEvent(r1-r0, b.cfg.evalCalls)
	fmt.Fprintf(b.stderr, "bench: %s: %.0f calls/s, redis %.1f µs/call, %d rows written\n", p.label, p.evalPerSec, p.redisUs, written)
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
		"PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort))
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
