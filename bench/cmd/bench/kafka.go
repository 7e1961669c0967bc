package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
)

// kfakeServeArg, as the bench binary's first argument, makes it the Kafka
// fake of the Kafka benchmark instead: the bench re-executes itself so the
// fake runs in a process of its own, and only the worker's CPU is charged.
const kfakeServeArg = "kfake-serve"

// kafkaTopic is the benchmark's Debezium topic.
const kafkaTopic = "bench.shop.customers"

// serveKfake serves kfake (one broker, the benchmark's topic with
// localrun.KafkaPartitions partitions) on a free loopback port, prints
// "listening on ADDR" and runs until ctx ends.
func serveKfake(ctx context.Context, stdout io.Writer) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(localrun.KafkaPartitions, kafkaTopic))
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "listening on %s\n", c.ListenAddrs()[0])
	<-ctx.Done()
	return nil
}

// kafkaRig is the Kafka worker under test (DELIVERY=kafka) and the fake it
// consumes from, each in its own process, with the bench's producer.
type kafkaRig struct {
	fake   *exec.Cmd
	worker *server
	// producers by compression codec, lz4 first (kafkaCodecs).
	producers map[string]*kgo.Client
}

// kafkaCodecs are the producer compressions measured: lz4 as
// debezium-server/application.properties has Debezium's producer compress
// (the headline), then zstd and none, since decompressing the records is a
// large part of the worker's CPU.
var kafkaCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}, {"none", kgo.NoCompression()}}

func (b *bencher) startKafka(ctx context.Context, workerBin, prefix string) (*kafkaRig, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	r := &kafkaRig{}
	var addr string
	if r.fake, addr, err = startFake(self, kfakeServeArg); err != nil {
		return nil, err
	}
	r.producers = map[string]*kgo.Client{}
	for _, c := range kafkaCodecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(kafkaTopic),
			kgo.ProducerBatchCompression(c.codec))
		if err != nil {
			r.stop()
			return nil, err
		}
		r.producers[c.name] = cl
	}
	if r.worker, err = b.startWorker(ctx, workerBin, "kafka", prefix, b.cfg.kafkaProfile != "",
		[]string{"DELIVERY=kafka", "KAFKA_BROKERS=" + addr, "KAFKA_TOPICS=" + kafkaTopic, "KAFKA_GROUP=bench"}); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *kafkaRig) stop() {
	if r.worker != nil {
		r.worker.stop()
	}
	for _, cl := range r.producers {
		cl.Close()
	}
	stopFake(r.fake)
}

// measureKafka preloads n events, compressed by codec (one of
// kafkaCodecs), into the topic while the worker is
// stopped (SIGSTOP), so it starts on a full log at saturation when it is
// continued, and measures it (measureWorker). The records are keyed by the
// Debezium key, as Debezium's Kafka sink keys them. The pipeline lag
// would be the preload's time, so it is not reported.
func (b *bencher) measureKafka(ctx context.Context, label string, r *kafkaRig, codec string, gen *bench.Generator, n int) (point, error) {
	return b.measureWorker(ctx, label, r.worker, kafkaMetrics, n, false, func(n int) (int, time.Time, error) {
		proc := r.worker.cmd.Process
		if err := proc.Signal(syscall.SIGSTOP); err != nil {
			return 0, time.Time{}, err
		}
		bytes, err := preload(ctx, r.producers[codec], gen, n)
		// Continued whatever happened, so the rig can stop it.
		if cerr := proc.Signal(syscall.SIGCONT); err == nil {
			err = cerr
		}
		return bytes, time.Now(), err
	})
}

// preload produces n events of gen, 1,000 records at a time.
func preload(ctx context.Context, cl *kgo.Client, gen *bench.Generator, n int) (int, error) {
	bytes := 0
	for sent := 0; sent < n; {
		recs := make([]*kgo.Record, min(1000, n-sent))
		for i := range recs {
			m := gen.NextMessage()
			recs[i] = &kgo.Record{Key: []byte(m.OrderingKey), Value: m.Data}
			bytes += len(m.Data)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return bytes, fmt.Errorf("produce: %w", err)
		}
		sent += len(recs)
	}
	return bytes, nil
}

// kafkaPoints measures the Kafka worker, after a warm-up and under its own
// key prefix, on the push headline's events (3 KB schema-enveloped
// customers changes) and on schemaless ones, lz4-compressed, then on the
// schema events with each other codec of kafkaCodecs.
func (b *bencher) kafkaPoints(ctx context.Context, workerBin string) (schema, noschema point, codecs []point, err error) {
	r, err := b.startKafka(ctx, workerBin, b.prefix+"kafka:")
	if err != nil {
		return schema, noschema, nil, err
	}
	defer r.stop()
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return schema, noschema, nil, err
	}
	if _, err := b.measureKafka(ctx, "kafka warm-up", r, "lz4", gen, 2000); err != nil {
		return schema, noschema, nil, err
	}
	schema, err = b.profiled(ctx, r.worker, b.cfg.kafkaProfile, "kafka worker", func() (point, error) {
		return b.measureKafka(ctx, "kafka schema (3 KB), lz4", r, "lz4", gen, b.cfg.pullEvents)
	})
	if err != nil {
		return schema, noschema, nil, err
	}
	for _, c := range kafkaCodecs[1:] {
		p, err := b.measureKafka(ctx, "kafka schema (3 KB), "+c.name, r, c.name, gen, b.cfg.pullEvents)
		if err != nil {
			return schema, noschema, nil, err
		}
		codecs = append(codecs, p)
	}
	ns, err := bench.NewGenerator(bench.DefaultEventOptions(false), gen.Pos())
	if err != nil {
		return schema, noschema, nil, err
	}
	noschema, err = b.measureKafka(ctx, "kafka no schema, lz4", r, "lz4", ns, b.cfg.pullEvents)
	return schema, noschema, codecs, err
}

// kafkaLines are the bench-kafka summary lines: the Kafka worker's points
// and their ratios to push at saturation (at50) and to one change per
// EVALSHA (eval).
func kafkaLines(schema, noschema, at50, eval point, codecs []point) string {
	var other strings.Builder
	for i, p := range codecs {
		fmt.Fprintf(&other, " %s_cpu_us_per_event=%.1f", kafkaCodecs[i+1].name, p.cpuUs)
	}
	return fmt.Sprintf("bench-kafka: events_per_sec=%.0f cpu_us_per_event=%.1f redis_cpu_us_per_event=%.1f changes_per_call=%.1f noschema_events_per_sec=%.0f noschema_cpu_us_per_event=%.1f noschema_redis_cpu_us_per_event=%.1f%s\n",
		schema.worker.perSec, schema.cpuUs, schema.redisUs, schema.perCall, noschema.worker.perSec, noschema.cpuUs, noschema.redisUs, other.String()) +
		fmt.Sprintf("bench-kafka-ratios: cpu_vs_push_saturation=%.2f redis_per_change_vs_evalsha1=%.2f (targets: cpu_us_per_event at most 8, ratio at most 0.25; changes_per_call at least 100)\n",
			schema.cpuUs/at50.cpuUs, schema.redisUs/eval.redisUs)
}
