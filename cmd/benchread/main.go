// Command benchread measures the read path (package cacheaside) on this
// machine's Redis (or memcached, -cache memcached) and MariaDB, Zipf-distributed keys over a 100,000-row
// table. The headline is open loop: reads start at a fixed offered rate
// (5,000 a second) whatever the answers' latency, from a warm cache (hits)
// and straight from the database, so a percentile is what one read costs at
// that load and not the queue a fixed set of readers builds. Then, closed
// loop, 50 readers read as fast as they can (the saturation point): a warm
// cache, a cold cache with fill=lease, a cold cache with fill=none (every
// read misses), and the database direct. It prints one summary line:
//
//	bench-read: cache=redis rate=… hit_p50_us=… hit_p99_us=… db_direct_p50_us=… db_direct_p99_us=… db_over_hit_p99=… closed_hit_p50_us=… closed_hit_p99_us=… miss_p99_us=… closed_db_direct_p50_us=… closed_db_direct_p99_us=… fill_hit_ratio=… nofill_hit_ratio=… db_queries_fill=… db_queries_nofill=…
//
// The table (test.benchread_rows by default) is created and bulk-loaded when
// missing or of the wrong size, and reused otherwise; the cache's keys under
// the benchmark's prefix are deleted before each cold phase and at the end
// (on memcached, which cannot list keys, every key the run can have
// written).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchread:", err)
		os.Exit(1)
	}
}

// settings are the command line.
type settings struct {
	dsn, redisURL, table, prefix string
	cache, memcache              string // "redis" or "memcached"; memcached's addresses
	rows, reads, readers         int
	zipfS                        float64
	rate                         float64 // open loop: reads started a second
	rateReads                    int     // open loop: reads per phase
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("benchread", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := getenv("MYSQL_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/test"
	}
	redisURL := getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	fs.StringVar(&s.dsn, "dsn", dsn, "MySQL/MariaDB DSN (go-sql-driver format; env MYSQL_DSN)")
	fs.StringVar(&s.redisURL, "redis", redisURL, "Redis URL (env REDIS_URL)")
	cache := getenv("CACHE_BACKEND")
	if cache == "" {
		cache = "redis"
	}
	memcache := getenv("MEMCACHE_ADDRS")
	if memcache == "" {
		memcache = "127.0.0.1:11211"
	}
	fs.StringVar(&s.cache, "cache", cache, "the cache to read: redis or memcached (env CACHE_BACKEND)")
	fs.StringVar(&s.memcache, "memcache", memcache, "memcached addresses, host:port,... (env MEMCACHE_ADDRS)")
	fs.StringVar(&s.table, "table", "test.benchread_rows", "table to read, db.table (created and loaded if missing)")
	fs.StringVar(&s.prefix, "prefix", "benchread:", "key prefix of the benchmark's records (deleted by the run)")
	fs.IntVar(&s.rows, "rows", 100_000, "rows in the table")
	fs.IntVar(&s.reads, "reads", 200_000, "reads per phase")
	fs.IntVar(&s.readers, "readers", 50, "concurrent readers")
	fs.Float64Var(&s.zipfS, "zipf", 1.1, "Zipf exponent s (> 1) of the key distribution")
	fs.Float64Var(&s.rate, "rate", 5000, "open loop: reads started per second")
	fs.IntVar(&s.rateReads, "rate-reads", 25_000, "open loop: reads per phase")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	switch {
	case fs.NArg() > 0:
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	case s.rows < 1 || s.reads < 1 || s.readers < 1 || s.rateReads < 1:
		return s, errors.New("-rows, -reads, -readers and -rate-reads must be positive")
	case s.rate <= 0:
		return s, errors.New("-rate must be positive")
	case s.cache != "redis" && s.cache != "memcached":
		return s, fmt.Errorf("-cache %q: want redis or memcached", s.cache)
	case s.zipfS <= 1:
		return s, errors.New("-zipf must be above 1")
	case strings.ContainsAny(s.prefix, "*?[]\\ ") || s.prefix == "":
		return s, errors.New("-prefix must be non-empty and free of glob characters and spaces")
	}
	return s, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	db, err := mysqlrow.Open(s.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(s.readers)
	db.SetMaxIdleConns(s.readers)
	c, err := openCache(ctx, s)
	if err != nil {
		return err
	}
	defer c.close()
	if err := ensureTable(ctx, db, s, stderr); err != nil {
		return err
	}
	defer func() {
		if err := c.clear(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(stderr, "benchread: cleanup:", err)
		}
	}()
	keys := zipfKeys(s)
	cfg := func(fill cdc.Fill) (*cdc.Config, error) {
		return cdc.ParseConfig([]byte(fmt.Sprintf("prefix: %q\ntables:\n  %s:\n    fill: %s\n", s.prefix, s.table, fill)))
	}

	// Phase 1: a warm replicate-mode cache; every read should hit.
	noneCfg, err := cfg(cdc.FillNone)
	if err != nil {
		return err
	}
	if err := warm(ctx, db, c, noneCfg, s, stderr); err != nil {
		return err
	}
	rows := mysqlrow.NewReader(db, noneCfg)
	readRow := func(ctx context.Context, id int) error {
		_, err := rows.Row(ctx, s.table, id)
		return err
	}

	// Open loop at s.rate: hits, then the database direct.
	openKeys := slices.Concat(zipfKeys(settings{rows: s.rows, reads: s.rateReads, readers: 1, zipfS: s.zipfS})...)
	hitReader := c.reader(db, noneCfg)
	openHit, err := openLoop(ctx, s.rate, openKeys, func(ctx context.Context, id int) error {
		_, err := hitReader.Get(ctx, s.table, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("open loop hit: %w", err)
	}
	if st := hitReader.Stats(); st.Hits != uint64(len(openKeys)) {
		return fmt.Errorf("open loop hit: %d of %d reads hit the warm cache", st.Hits, len(openKeys))
	}
	fmt.Fprintf(stderr, "open loop hit: %d reads at %.0f/s in %v, p50 %v p99 %v; start lateness p99 %v\n",
		len(openKeys), s.rate, openHit.elapsed.Round(time.Millisecond), openHit.p(0.50), openHit.p(0.99), openHit.lateP99)
	openDB, err := openLoop(ctx, s.rate, openKeys, readRow)
	if err != nil {
		return fmt.Errorf("open loop db direct: %w", err)
	}
	fmt.Fprintf(stderr, "open loop db direct: %d reads at %.0f/s in %v, p50 %v p99 %v; start lateness p99 %v\n",
		len(openKeys), s.rate, openDB.elapsed.Round(time.Millisecond), openDB.p(0.50), openDB.p(0.99), openDB.lateP99)

	// Closed loop: s.readers reading as fast as they can.
	hit, err := phase(ctx, "hit", s, keys, stderr, c.reader(db, noneCfg))
	if err != nil {
		return err
	}

	// Phase 2: cold cache, fill with leases.
	leaseCfg, err := cfg(cdc.FillLease)
	if err != nil {
		return err
	}
	if err := c.clear(ctx); err != nil {
		return err
	}
	if err := c.setCheckpoint(ctx, s.table, cdc.NewVersion(1, 100, 0)); err != nil {
		return err
	}
	fill, err := phase(ctx, "fill=lease", s, keys, stderr, c.reader(db, leaseCfg))
	if err != nil {
		return err
	}

	// Phase 3: cold cache, no fill: the cache holds only what the stream
	// wrote, here nothing, so every read goes to the database.
	if err := c.clear(ctx); err != nil {
		return err
	}
	nofill, err := phase(ctx, "fill=none", s, keys, stderr, c.reader(db, noneCfg))
	if err != nil {
		return err
	}

	// Phase 4: the same reads straight from the database.
	direct, err := measure(ctx, s, keys, readRow)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "db direct: %d reads in %v, p50 %v p99 %v\n", s.reads, direct.elapsed.Round(time.Millisecond), direct.p(0.50), direct.p(0.99))

	fmt.Fprintf(stdout, "bench-read: cache=%s rate=%.0f hit_p50_us=%.0f hit_p99_us=%.0f db_direct_p50_us=%.0f db_direct_p99_us=%.0f db_over_hit_p99=%.1f closed_hit_p50_us=%.0f closed_hit_p99_us=%.0f miss_p99_us=%.0f closed_db_direct_p50_us=%.0f closed_db_direct_p99_us=%.0f fill_hit_ratio=%.4f nofill_hit_ratio=%.4f db_queries_fill=%d db_queries_nofill=%d\n",
		s.cache, s.rate, us(openHit.p(0.50)), us(openHit.p(0.99)), us(openDB.p(0.50)), us(openDB.p(0.99)), float64(openDB.p(0.99))/float64(max(openHit.p(0.99), 1)),
		us(hit.lat.p(0.50)), us(hit.lat.p(0.99)), us(nofill.lat.p(0.99)), us(direct.p(0.50)), us(direct.p(0.99)),
		fill.hitRatio(), nofill.hitRatio(), fill.stats.DBQueries, nofill.stats.DBQueries)
	return nil
}

// phaseResult is one cacheaside phase: exact latencies and the Reader's
// counters.
type phaseResult struct {
	lat   latencies
	stats cacheaside.Stats
	reads int
}

// hitRatio is the share of reads the cache answered at the first look.
func (p phaseResult) hitRatio() float64 {
	return float64(p.stats.Hits+p.stats.TombstoneHits) / float64(p.reads)
}

func phase(ctx context.Context, name string, s settings, keys [][]int, stderr io.Writer, r *cacheaside.Reader) (phaseResult, error) {
	lat, err := measure(ctx, s, keys, func(ctx context.Context, id int) error {
		_, err := r.Get(ctx, s.table, id)
		return err
	})
	if err != nil {
		return phaseResult{}, fmt.Errorf("phase %s: %w", name, err)
	}
	st := r.Stats()
	res := phaseResult{lat: lat, stats: st, reads: s.reads}
	fmt.Fprintf(stderr, "%s: %d reads in %v, p50 %v p99 %v; hits %d late hits %d misses %d fills %d conflicts %d db queries %d errors %d\n",
		name, s.reads, lat.elapsed.Round(time.Millisecond), lat.p(0.50), lat.p(0.99),
		st.Hits, st.LateHits, st.Misses, st.Fills, st.FillConflicts, st.DBQueries, st.Errors)
	return res, nil
}

// latencies are every read's duration, sorted, and the phase's wall time.
type latencies struct {
	all     []time.Duration
	elapsed time.Duration
}

func (l latencies) p(q float64) time.Duration {
	if len(l.all) == 0 {
		return 0
	}
	return l.all[min(int(q*float64(len(l.all))), len(l.all)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// measure runs s.readers goroutines, each reading its share of keys, and
// returns every read's latency. The first error stops the phase.
func measure(ctx context.Context, s settings, keys [][]int, read func(context.Context, int) error) (latencies, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards firstErr
		firstErr error
	)
	per := make([][]time.Duration, len(keys))
	start := time.Now()
	for g := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]time.Duration, 0, len(keys[g]))
			for _, id := range keys[g] {
				t0 := time.Now()
				err := read(ctx, id)
				out = append(out, time.Since(t0))
				if err != nil && !errors.Is(err, cacheaside.ErrNotFound) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("read %d: %w", id, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
			per[g] = out
		}()
	}
	wg.Wait()
	l := latencies{elapsed: time.Since(start)}
	if firstErr != nil {
		return l, firstErr
	}
	for _, p := range per {
		l.all = append(l.all, p...)
	}
	slices.Sort(l.all)
	return l, nil
}

// zipfKeys draws s.reads ids (1..s.rows, Zipf-distributed: id 1 hottest)
// split among the readers; every phase reads the same sequence.
func zipfKeys(s settings) [][]int {
	keys := make([][]int, s.readers)
	for g := range keys {
		rng := rand.New(rand.NewPCG(uint64(g), 42))
		z := rand.NewZipf(rng, s.zipfS, 1, uint64(s.rows-1))
		n := s.reads / s.readers
		if g < s.reads%s.readers {
			n++
		}
		keys[g] = make([]int, n)
		for i := range keys[g] {
			keys[g][i] = int(z.Uint64()) + 1
		}
	}
	return keys
}
