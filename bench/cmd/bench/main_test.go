package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	if err != nil || len(c.sweep) != 4 || c.sweep[2] != 50 || c.rate != 5000 {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	for _, args := range [][]string{{"-sweep", "1,8"}, {"-sweep", "x,50"}, {"-n", "10"}, {"-rate", "0"}, {"extra"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestSweepTable(t *testing.T) {
	p := point{label: "c=50", dataBytes: 6238, cpuUs: 140, redisUs: 15}
	np := point{label: "c=50 no schema", dataBytes: 1122}
	ev := point{label: "redis-benchmark", evalPerSec: 18000, redisUs: 30}
	got := sweepTable(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), "a private redis-server", []point{p}, []point{np, ev})
	for _, want := range []string{"on 2026-11-25", "Redis: a private redis-server.", "carry 6238 bytes", "schemaless ones 1122", "| c=50 | 0 | 0.00 | 0.00 | 140.0 | 15.0 |", "| redis-benchmark | 18000 | | | | 30.0 | |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
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
	if err := json.Unmarshal([]byte(row), &m); err != nil || m["id"] != 1.0 {
		t.Fatalf("row %s: %v", row, err)
	}
	if n := meanDataBytes([][]byte{body}); n < 600 || n > 1400 { // a create: no before image
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
