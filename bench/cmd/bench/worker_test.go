package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

// TestMain serves the Kafka fake when the test binary is re-executed as
// one, as the bench binary is (startKafka starts os.Executable()).
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == kfakeServeArg {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := serveKfake(ctx, os.Stdout)
		stop()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseWorkerCounters(t *testing.T) {
	body := "# HELP cdc_pull_acked_total x\ncdc_pull_acked_total 120\ncdc_pull_nacked_total 3\ncdc_pull_batches_total 4\n" +
		"cdc_kafka_batches_total 9\ncdc_kafka_retries_total 2\n"
	var st workerStats
	if err := parseWorkerCounters(body, pullMetrics, &st); err != nil || st.done != 120 || st.nacked != 3 || st.batches != 4 {
		t.Fatalf("pull: %+v, %v", st, err)
	}
	st = workerStats{done: 7}
	if err := parseWorkerCounters(body, kafkaMetrics, &st); err != nil || st.done != 7 || st.nacked != 2 || st.batches != 9 {
		t.Fatalf("kafka (done from the core's outcomes, kept): %+v, %v", st, err)
	}
	if err := parseWorkerCounters("cdc_kafka_batches_total x\n", kafkaMetrics, &st); err == nil {
		t.Fatal("a bad value accepted")
	}
}

func TestKafkaLines(t *testing.T) {
	at50, eval := point{cpuUs: 40}, point{redisUs: 20}
	schema := point{cpuUs: 8, redisUs: 4, perCall: 250, worker: &workerPoint{perSec: 50000}}
	ns := point{cpuUs: 5, redisUs: 3, worker: &workerPoint{perSec: 90000}}
	got := kafkaLines(schema, ns, at50, eval, []point{{cpuUs: 7}, {cpuUs: 6}})
	want := "bench-kafka: events_per_sec=50000 cpu_us_per_event=8.0 redis_cpu_us_per_event=4.0 changes_per_call=250.0 noschema_events_per_sec=90000 noschema_cpu_us_per_event=5.0 noschema_redis_cpu_us_per_event=3.0 zstd_cpu_us_per_event=7.0 none_cpu_us_per_event=6.0\n" +
		"bench-kafka-ratios: cpu_vs_push_saturation=0.20 redis_per_change_vs_evalsha1=0.20 "
	if !strings.HasPrefix(got, want) {
		t.Fatalf("got\n%s", got)
	}
}

func TestWorkerRowWithoutLag(t *testing.T) {
	d := tableDesc{cores: 2, procs: 1, keys: 10000, redis: "x"}
	k := point{label: "kafka schema (3 KB)", cpuUs: 8, redisUs: 4, perCall: 250, worker: &workerPoint{perSec: 50000, batch: 1000}}
	pl := point{label: "pull", cpuUs: 12, worker: &workerPoint{perSec: 20000, p50: 2e6, p99: 5e6, batch: 900, nacked: 1}}
	got := sweepTable(time.Unix(0, 0), d, []point{{label: "c=50"}}, point{}, point{}, []point{k, pl})
	for _, want := range []string{"| kafka schema (3 KB) | 50000 |  |  | 8.0 | 4.0 | 250.0 | 1000 a batch, 0 nacked |",
		"| pull | 20000 | 2.00 | 5.00 | 12.0 | 0.0 |  | 900 a batch, 1 nacked |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

// TestKafkaPoint runs the Kafka rig small: the fake in its own process (the
// test binary re-executed), events preloaded while the worker is stopped,
// and every one counted finished, applied to Redis and charged.
func TestKafkaPoint(t *testing.T) {
	ctx := context.Background()
	b := testBencher(t, "kafka")
	bins, err := b.build(ctx, "github.com/cloudsql-cache/cloudsql-cache/worker/cmd")
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.startKafka(ctx, bins[0], b.prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.measureKafka(ctx, "kafka", r, "lz4", gen, 1500)
	if err != nil {
		t.Fatal(err)
	}
	if p.worker == nil || p.worker.batch <= 0 || p.perCall < 1 || p.cpuUs <= 0 || p.dataBytes < 2000 || p.worker.p99 != 0 {
		t.Fatalf("point %+v %+v", p, p.worker)
	}
	// The ids cycle from 1001: the 1500 events wrote 1500 rows.
	rec, err := b.rdb.HGetAll(ctx, b.prefix+"shop.customers:2500").Result()
	if err != nil || !strings.HasPrefix(rec["d"], `{"id":2500,`) {
		t.Fatalf("last row not cached: %v %v", rec, err)
	}
	if rec, err := b.rdb.HGetAll(ctx, b.prefix+"shop.customers:2501").Result(); err != nil || len(rec) != 0 {
		t.Fatalf("a row past the events: %v %v", rec, err)
	}
}

// TestMemcachedPoint: the function over a private memcached is measured
// and its changes go there, none to Redis.
func TestMemcachedPoint(t *testing.T) {
	ctx := context.Background()
	b := testBencher(t, "mc")
	b.cfg.events = 1000
	bins, err := b.build(ctx, "github.com/cloudsql-cache/cloudsql-cache/function/cmd")
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.memcachedPoint(ctx, bins[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.res.OK() != 1000 || p.perCall < 1 {
		t.Fatalf("point %+v", p)
	}
	if keys, err := countKeys(ctx, b.rdb, b.prefix); err != nil || keys != 0 {
		t.Fatalf("%d keys written to Redis (%v)", keys, err)
	}
}

// TestStartMemcached: the private memcached answers on its own port and its
// CPU is readable from /proc; stop ends it.
func TestStartMemcached(t *testing.T) {
	ctx := context.Background()
	addr, mc, stop, err := startMemcached(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if addr == "127.0.0.1:11211" {
		t.Fatal("not private")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("version: %q %v", line, err)
	}
	ticks, err := bench.ClockTicks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bench.ProcCPU(mc.Process.Pid, ticks); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still answering after stop")
	}
}
