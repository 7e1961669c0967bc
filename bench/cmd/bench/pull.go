package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// pullRig is the streaming-pull worker under test, with the fake Pub/Sub
// it pulls from, each in its own process: only the worker's CPU is
// charged to the events.
type pullRig struct {
	fake   *exec.Cmd
	worker *server
	client *pubsub.Client
	pub    *pubsub.Publisher
}

var fakeListening = regexp.MustCompile(`listening on (\S+)`)

// startPull starts cmd/pubsubfake and worker/cmd (bins: the worker, the
// fake) with a topic and its pull subscription, the worker under prefix.
func (b *bencher) startPull(ctx context.Context, workerBin, fakeBin, prefix string) (*pullRig, error) {
	r := &pullRig{fake: exec.Command(fakeBin, "-addr", "127.0.0.1:0")}
	out, err := r.fake.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.fake.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	m := fakeListening.FindStringSubmatch(line)
	if err != nil || m == nil {
		r.stop()
		return nil, fmt.Errorf("pubsubfake did not say where it listens: %q %v", line, err)
	}
	addr := m[1]
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if r.client, err = pubsub.NewClient(ctx, "bench", option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))); err != nil {
		r.stop()
		return nil, err
	}
	const topic, sub = "projects/bench/topics/cdc", "projects/bench/subscriptions/cdc-pull"
	if _, err := r.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		r.stop()
		return nil, err
	}
	if _, err := r.client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic,
		AckDeadlineSeconds: 60}); err != nil {
		r.stop()
		return nil, err
	}
	// Without ordering keys, as Debezium publishes the compact profile:
	// the publisher then batches up to 1,000 messages a request, where
	// one ordering key per row would make it one request a message and
	// the publisher, not the worker, the bottleneck. The key columns come
	// from the config instead.
	r.pub = r.client.Publisher(topic)
	r.pub.PublishSettings.CountThreshold = 1000
	r.pub.PublishSettings.ByteThreshold = 8 << 20
	r.pub.PublishSettings.DelayThreshold = 5 * time.Millisecond
	config := filepath.Join(b.tmp, "pull-config.yaml")
	if err := os.WriteFile(config, []byte("tables:\n  shop.customers:\n    key: [id]\n"), 0o644); err != nil {
		r.stop()
		return nil, err
	}
	env := append([]string{"DELIVERY=pull", "PUBSUB_EMULATOR_HOST=" + addr, "PUBSUB_SUBSCRIPTIONS=" + sub,
		"SUMMARY_INTERVAL=1h", "CACHE_CONFIG=" + config}, b.procsEnv()...)
	pprofAddr := ""
	if b.cfg.pullProfile != "" {
		port, err := freePort()
		if err != nil {
			r.stop()
			return nil, err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(port)
		env = append(env, "PPROF_ADDR="+pprofAddr)
	}
	if r.worker, err = start(ctx, workerBin, prefix, b.redisURL(), filepath.Join(b.tmp, "worker.log"), env...); err != nil {
		r.stop()
		return nil, err
	}
	r.worker.metrics = true
	r.worker.pprofURL = "http://" + pprofAddr
	// The worker answers /healthz 503 until its stream is open.
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get(r.worker.url + "healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("the worker is not healthy after 15 s (log %s)", r.worker.logPath)
		}
		time.Sleep(20 * time.Millisecond) // polling the health check
	}
	return r, nil
}

func (r *pullRig) stop() {
	if r.pub != nil {
		r.pub.Stop()
	}
	if r.worker != nil {
		r.worker.stop()
	}
	if r.client != nil {
		r.client.Close()
	}
	if r.fake.Process != nil {
		_ = r.fake.Process.Signal(os.Interrupt)
		_ = r.fake.Wait()
	}
}

// measurePull publishes n events as fast as the publisher goes and charges
// the worker's and Redis's CPU, from before the first publish until the
// worker has acknowledged every event, to the events. p50 and p99 are the
// worker's pipeline lag (now minus the event's ts_ms at apply, so the time
// in the queue included), from its histogram.
func (b *bencher) measurePull(ctx context.Context, label string, r *pullRig, gen *bench.Generator, n int) (point, error) {
	p := point{label: label}
	base, err := pullCounters(ctx, r.worker.url)
	if err != nil {
		return p, err
	}
	u0, err := b.usage(ctx, r.worker)
	if err != nil {
		return p, err
	}
	start := time.Now()
	results := make([]*pubsub.PublishResult, n)
	bytes := 0
	for i := range results {
		m := gen.NextMessage()
		bytes += len(m.Data)
		results[i] = r.pub.Publish(ctx, &pubsub.Message{Data: m.Data})
	}
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			return p, fmt.Errorf("%s: publish: %w", label, err)
		}
	}
	var now pullStats
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if now, err = pullCounters(ctx, r.worker.url); err != nil {
			return p, err
		}
		if now.acked-base.acked >= float64(n) {
			break
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%s: %v of %d acked after 5 min (log %s)", label, now.acked-base.acked, n, r.worker.logPath)
		}
		time.Sleep(10 * time.Millisecond) // polling the worker's counters
	}
	elapsed := time.Since(start)
	u1, err := b.usage(ctx, r.worker)
	if err != nil {
		return p, err
	}
	q := now.lag.Sub(&base.lag)
	p.dataBytes = bytes / n
	p.cpuUs, p.redisUs = perEvent(u1.server-u0.server, n), perEvent(u1.redis-u0.redis, n)
	if u1.calls > u0.calls {
		p.perCall = (u1.changes - u0.changes) / (u1.calls - u0.calls)
	}
	p.pull = &pullPoint{perSec: float64(n) / elapsed.Seconds(), p50: q.Quantile(0.5), p99: q.Quantile(0.99),
		batch: float64(n) / (now.batches - base.batches), nacked: now.nacked - base.nacked}
	fmt.Fprintf(b.stderr, "bench: %-27s %6d events %7.0f/s lag p50 %7.2f ms p99 %8.2f ms cpu %6.1f µs redis %5.1f µs, %.0f a batch, %.0f changes a call, %v nacked\n",
		label, n, p.pull.perSec, ms(p.pull.p50), ms(p.pull.p99), p.cpuUs, p.redisUs, p.pull.batch, p.perCall, p.pull.nacked)
	return p, nil
}

// pullPoint is what a pull row has beyond a push row.
type pullPoint struct {
	perSec   float64       // events acknowledged a second
	p50, p99 time.Duration // pipeline lag at apply
	batch    float64       // messages per batch
	nacked   float64
}

// pullStats are the worker's counters read from /metrics.
type pullStats struct {
	acked, nacked, batches float64
	lag                    metrics.HistogramSnapshot
}

// pullCounters reads the worker's ack counters and its pipeline-lag
// histogram (summed over tables) from /metrics.
func pullCounters(ctx context.Context, base string) (pullStats, error) {
	var st pullStats
	tot, err := localrun.Scrape(ctx, http.DefaultClient, base)
	if err != nil {
		return st, err
	}
	st.lag = tot.Lag
	resp, err := http.Get(base + "metrics")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "cdc_pull_acked_total":
			dst = &st.acked
		case "cdc_pull_nacked_total":
			dst = &st.nacked
		case "cdc_pull_batches_total":
			dst = &st.batches
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(v, 64); err != nil {
			return st, fmt.Errorf("/metrics: %q: %w", line, err)
		}
	}
	return st, nil
}

// pullPoints measures the streaming-pull worker on the events of the push
// headline (3 KB schema-enveloped customers changes) and on schemaless
// ones, after a warm-up, under its own key prefix.
func (b *bencher) pullPoints(ctx context.Context, workerBin, fakeBin string) (schema, noschema point, err error) {
	r, err := b.startPull(ctx, workerBin, fakeBin, b.prefix+"pull:")
	if err != nil {
		return schema, noschema, err
	}
	defer r.stop()
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return schema, noschema, err
	}
	if _, err := b.measurePull(ctx, "pull warm-up", r, gen, 2000); err != nil {
		return schema, noschema, err
	}
	var profDone chan error
	if b.cfg.pullProfile != "" {
		profDone = make(chan error, 1)
		go func() { profDone <- fetchProfile(ctx, r.worker.pprofURL, b.cfg.pullProfile, 4) }()
	}
	if schema, err = b.measurePull(ctx, "pull schema (3 KB)", r, gen, b.cfg.pullEvents); err != nil {
		return schema, noschema, err
	}
	if profDone != nil {
		if err := <-profDone; err != nil {
			return schema, noschema, err
		}
		fmt.Fprintf(b.stderr, "bench: pull worker CPU profile in %s (go tool pprof -top %s)\n", b.cfg.pullProfile, b.cfg.pullProfile)
	}
	ns, err := bench.NewGenerator(bench.DefaultEventOptions(false), gen.Pos())
	if err != nil {
		return schema, noschema, err
	}
	noschema, err = b.measurePull(ctx, "pull no schema", r, ns, b.cfg.pullEvents)
	return schema, noschema, err
}

// fetchProfile writes a CPU profile of secs seconds from a pprof server.
func fetchProfile(ctx context.Context, base, path string, secs int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
