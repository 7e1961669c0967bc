package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

func TestReplaceSweep(t *testing.T) {
	readme := "# x\n\n## Cost\n\ntext\n\n## Performance\n\nintro\n" + sweepStart + "\nold table\n" + sweepEnd + "\nafter\n"
	got, err := replaceSweep([]byte(readme), "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# x\n\n## Cost\n\ntext\n\n## Performance\n\nintro\n" + sweepStart + "\n| new |\n" + sweepEnd + "\nafter\n"
	if string(got) != want {
		t.Fatalf("got\n%s", got)
	}
	// Without markers: a Performance section is appended, the rest kept.
	got, err = replaceSweep([]byte("# x\nbody"), "| t |\n")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "# x\nbody\n\n## Performance\n\n"+sweepStart+"\n| t |\n"+sweepEnd+"\n" {
		t.Fatalf("appended\n%s", got)
	}
	if _, err := replaceSweep([]byte(sweepEnd+"\n"+sweepStart), "x"); err == nil {
		t.Fatal("markers out of order accepted")
	}
	if _, err := replaceSweep([]byte(sweepStart), "x"); err == nil {
		t.Fatal("missing end marker accepted")
	}
}

func TestParseBenchmarkCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"EVALSHA abc 1 k:__rand_int__ v d 0 0 {"id":1,"a":"x,y"}","18587.36","2.124","0.264","1.375","5.215","6.007","8.303"
`
	got, err := parseBenchmarkCSV([]byte(out))
	if err != nil || got != 18587.36 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseBenchmarkCSV([]byte("ERROR: NOSCRIPT\n")); err == nil {
		t.Fatal("no rate accepted")
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || len(c.sweep) != 4 || c.sweep[2] != 50 || c.rate != 5000 || c.procs != 1 {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if c, err := parseFlags([]string{"-procs", "0"}, &bytes.Buffer{}); err != nil || c.procs != 0 {
		t.Fatalf("-procs 0: %+v, %v", c, err)
	}
	if c.memcached {
		t.Fatal("memcached measured by default")
	}
	if c, err := parseFlags([]string{"-cache", "memcached"}, &bytes.Buffer{}); err != nil || !c.memcached {
		t.Fatalf("-cache memcached: %+v, %v", c, err)
	}
	for _, args := range [][]string{{"-sweep", "1,8"}, {"-sweep", "x,50"}, {"-n", "10"}, {"-rate", "0"}, {"-procs", "-1"}, {"-cache", "redis2"}, {"extra"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestSweepTable(t *testing.T) {
	p := point{label: "c=50", dataBytes: 3008, cpuUs: 140, redisUs: 15, perCall: 7.25}
	wide := point{label: "c=50 orders (18 cols)", dataBytes: 6527, cpuUs: 180}
	np := point{label: "c=50 no schema", dataBytes: 663}
	fl := point{label: "net/http empty handler c=50", cpuUs: 38}
	ev := point{label: "redis-benchmark", evalPerSec: 18000, redisUs: 30}
	ev8 := point{label: "redis-benchmark batched", evalPerSec: 90000, redisUs: 9, perCall: 8}
	d := tableDesc{cores: 2, procs: 1, keys: 10000, redis: "a private redis-server"}
	got := sweepTable(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), d, []point{p}, wide, np, []point{fl, ev, ev8})
	for _, want := range []string{"on 2026-11-25", "one 2-core machine", "GOMAXPROCS=1 (`-procs 1`", "Redis: a private redis-server.",
		"`customers` table over 10000 rows", "carry 3008 bytes", "schemaless ones 663", "instead, 6527 bytes",
		"| c=50 | 0 | 0.00 | 0.00 | 140.0 | 15.0 | 7.2 |  |\n| c=50 orders (18 cols) | 0 | 0.00 | 0.00 | 180.0 | 0.0 |  |  |\n| c=50 no schema |",
		"| net/http empty handler c=50 | 0 | 0.00 | 0.00 | 38.0 |", "| redis-benchmark | 18000 | | | | 30.0 |  | |",
		"| redis-benchmark batched | 90000 | | | | 9.0 | 8.0 | |", "with one change a call and with 8"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	d.procs = 0
	if got := sweepTable(time.Now(), d, []point{p}, wide, np, nil); !strings.Contains(got, "GOMAXPROCS left to Go's default (`-procs 0`: 2)") {
		t.Errorf("-procs 0 not described:\n%s", got)
	}
}

func TestAfterImageAndMeanBytes(t *testing.T) {
	g, err := bench.NewGenerator(bench.DefaultEventOptions(false), 1)
	if err != nil {
		t.Fatal(err)
	}
	body := g.Next()
	row, err := afterImage(body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(row), &m); err != nil || m["id"] != 1001.0 || len(m) != 4 {
		t.Fatalf("row %s: %v", row, err)
	}
	if n := meanDataBytes([][]byte{body}); n < 300 || n > 1000 { // a create: no before image
		t.Fatalf("mean data bytes %d", n)
	}
	if _, err := afterImage([]byte(`{"message":{"data":"e30="}}`)); err == nil {
		t.Fatal("event without after image accepted")
	}
}

func TestDeleteAndCountPrefix(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("test:benchcmd:%d:", time.Now().UnixNano())
	for i := range 2500 {
		if err := rdb.Set(ctx, fmt.Sprintf("%sk%d", prefix, i), "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	other := prefix[:len(prefix)-1] + "x:keep"
	rdb.Set(ctx, other, "x", time.Minute)
	defer rdb.Del(ctx, other)
	if n, err := countKeys(ctx, rdb, prefix); err != nil || n != 2500 {
		t.Fatalf("count %d, %v", n, err)
	}
	if n, err := deletePrefix(ctx, rdb, prefix); err != nil || n != 2500 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if n, _ := countKeys(ctx, rdb, prefix); n != 0 {
		t.Fatalf("%d keys left", n)
	}
	if rdb.Exists(ctx, other).Val() != 1 {
		t.Fatal("a key outside the prefix was deleted")
	}
}

func TestStartRedis(t *testing.T) {
	ctx := context.Background()
	addr, stop, err := startRedis(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if addr == "127.0.0.1:6379" {
		t.Fatal("not private")
	}
	stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("still answering after stop")
	}
}

func TestSample(t *testing.T) {
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = []byte{byte(i / 100)}
	}
	got := sample(bodies, 10)
	for i, b := range got {
		if b[0] != byte(i) {
			t.Fatalf("sample %d from block %d: not spread evenly", i, b[0])
		}
	}
	if len(sample(bodies[:5], 10)) != 5 {
		t.Fatal("short input not returned whole")
	}
}

// The floor server answers the benchmark's pushes and nothing else, and is
// measured like the function, with the -procs limit in its environment.
func TestFloorServer(t *testing.T) {
	ctx := context.Background()
	b := testBencher(t, "floor")
	bins, err := b.build(ctx, "github.com/cloudsql-cache/cloudsql-cache/bench/floor")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(ctx, bins[0], b.prefix, b.redisURL(), filepath.Join(b.tmp, "floor.log"), b.procsEnv()...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", srv.pid()))
	if err != nil || !bytes.Contains(env, []byte("\x00GOMAXPROCS=1\x00")) {
		t.Errorf("floor environment %q lacks GOMAXPROCS=1 (%v)", env, err)
	}
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct {
		method, path string
		body         []byte
		want         int
	}{
		{http.MethodGet, "healthz", nil, http.StatusNoContent},
		{http.MethodPost, "", gen.Next(), http.StatusNoContent},
		{http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{http.MethodGet, "metrics", nil, http.StatusMethodNotAllowed},
	} {
		r, err := http.NewRequest(req.method, srv.url+req.path, bytes.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != req.want {
			t.Errorf("%s /%s: %d, want %d", req.method, req.path, resp.StatusCode, req.want)
		}
	}
	srv.stop()

	ps, err := b.measureServer(ctx, bins[0], "floor", true, loadRun{"floor c=50", gen.Batch(3000), bench.LoadConfig{Concurrency: 50, Duration: b.cfg.pointTime}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	if p.res.OK() != 3000 || p.cpuUs <= 0 || p.dataBytes < 2000 {
		t.Fatalf("floor point: %d answered 2xx, %.1f µs CPU, %d data bytes", p.res.OK(), p.cpuUs, p.dataBytes)
	}
}

// The function's /metrics counts every applied change in some apply script
// call, so measure can report the batch size the coalescing achieved.
func TestFunctionApplyCounters(t *testing.T) {
	ctx := context.Background()
	b := testBencher(t, "fn")
	bins, err := b.build(ctx, "github.com/cloudsql-cache/cloudsql-cache/function/cmd")
	if err != nil {
		t.Fatal(err)
	}
	fn, err := start(ctx, bins[0], b.prefix, b.redisURL(), filepath.Join(b.tmp, "function.log"), b.procsEnv()...)
	if err != nil {
		t.Fatal(err)
	}
	defer fn.stop()
	fn.metrics = true
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		t.Fatal(err)
	}
	calls0, changes0, err := fn.applyCounters()
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.measure(ctx, "c=50", fn, gen.Batch(2000), bench.LoadConfig{Concurrency: 50})
	if err != nil {
		t.Fatal(err)
	}
	calls1, changes1, err := fn.applyCounters()
	if err != nil {
		t.Fatal(err)
	}
	if changes1-changes0 != 2000 || calls1 <= calls0 || calls1-calls0 > 2000 {
		t.Fatalf("2000 changes counted as %v changes in %v calls", changes1-changes0, calls1-calls0)
	}
	if want := (changes1 - changes0) / (calls1 - calls0); p.perCall != want {
		t.Errorf("measure reported %.2f changes a call, the counters %.2f", p.perCall, want)
	}
}

// testBencher is a bencher on the machine's Redis at -procs 1, under a key
// prefix of its own that is deleted when the test ends.
func testBencher(t *testing.T, name string) *bencher {
	t.Helper()
	ticks, err := bench.ClockTicks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	b := &bencher{cfg: config{redisAddr: "127.0.0.1:6379", procs: 1, pointTime: 10 * time.Second}, rdb: rdb, ticks: ticks,
		tmp: t.TempDir(), prefix: fmt.Sprintf("test:bench%s:%d:", name, time.Now().UnixNano()), stderr: &bytes.Buffer{}}
	t.Cleanup(func() {
		_, _ = deletePrefix(context.Background(), rdb, b.prefix)
		rdb.Close()
	})
	return b
}
