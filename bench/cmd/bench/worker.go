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

	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// This file is what the streaming-pull and the Kafka worker benchmarks
// share: the queue fake in its own process, the worker started and waited
// for, its counters, and one measured point.

var fakeListening = regexp.MustCompile(`listening on (\S+)`)

// startFake runs a queue fake (bin args...) that prints "listening on
// ADDR" on its first line, and returns the process and the address.
func startFake(bin string, args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	m := fakeListening.FindStringSubmatch(line)
	if err != nil || m == nil {
		stopFake(cmd)
		return nil, "", fmt.Errorf("%s did not say where it listens: %q %v", filepath.Base(bin), line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return cmd, m[1], nil
}

// stopFake interrupts a fake started by startFake and waits for it.
func stopFake(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
}

// startWorker starts worker/cmd under prefix with env (its delivery's
// settings) and a config keying shop.customers by id, with a pprof server
// when the bench profiles the worker, and waits until /healthz says 200
// (the worker answers 503 until its queue is connected).
func (b *bencher) startWorker(ctx context.Context, workerBin, name, prefix string, pprof bool, env []string) (*server, error) {
	config := filepath.Join(b.tmp, name+"-config.yaml")
	if err := os.WriteFile(config, []byte("tables:\n  shop.customers:\n    key: [id]\n"), 0o644); err != nil {
		return nil, err
	}
	env = append(append(env, "SUMMARY_INTERVAL=1h", "CACHE_CONFIG="+config), b.procsEnv()...)
	pprofAddr := ""
	if pprof {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(port)
		env = append(env, "PPROF_ADDR="+pprofAddr)
	}
	w, err := start(ctx, workerBin, prefix, b.redisURL(), filepath.Join(b.tmp, name+".log"), env...)
	if err != nil {
		return nil, err
	}
	w.metrics = true
	w.pprofURL = "http://" + pprofAddr
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err := http.Get(w.url + "healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		if time.Now().After(deadline) {
			w.stop()
			return nil, fmt.Errorf("the %s worker is not healthy after 15 s (log %s)", name, w.logPath)
		}
		time.Sleep(20 * time.Millisecond) // polling the health check
	}
}

// workerPoint is what a worker row has beyond a push row.
type workerPoint struct {
	perSec   float64       // events finished a second
	p50, p99 time.Duration // pipeline lag at apply; zero when not measured
	batch    float64       // messages per batch
	nacked   float64       // nacks (pull) or record retries (Kafka)
}

// workerMetrics names a delivery's counters in the worker's /metrics.
type workerMetrics struct {
	// done counts finished messages; empty: the core's handled messages
	// (every cdc_messages_total outcome but failed).
	done    string
	nacked  string
	batches string
}

var (
	pullMetrics  = workerMetrics{done: "cdc_pull_acked_total", nacked: "cdc_pull_nacked_total", batches: "cdc_pull_batches_total"}
	kafkaMetrics = workerMetrics{nacked: "cdc_kafka_retries_total", batches: "cdc_kafka_batches_total"}
)

// workerStats are the worker's counters read from /metrics.
type workerStats struct {
	done, nacked, batches float64
	lag                   metrics.HistogramSnapshot
}

// workerCounters reads the worker's counters named by names and its
// pipeline-lag histogram (summed over tables) from /metrics.
func workerCounters(ctx context.Context, base string, names workerMetrics) (workerStats, error) {
	var st workerStats
	tot, err := localrun.Scrape(ctx, http.DefaultClient, base)
	if err != nil {
		return st, err
	}
	st.lag = tot.Lag
	if names.done == "" {
		st.done = float64(tot.Handled())
	}
	resp, err := http.Get(base + "metrics")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, parseWorkerCounters(string(body), names, &st)
}

// parseWorkerCounters sets st's counters from a /metrics body.
func parseWorkerCounters(body string, names workerMetrics, st *workerStats) error {
	for _, line := range strings.Split(body, "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || name == "" {
			continue
		}
		var dst *float64
		switch name {
		case names.done:
			dst = &st.done
		case names.nacked:
			dst = &st.nacked
		case names.batches:
			dst = &st.batches
		default:
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("/metrics: %q: %w", line, err)
		}
		*dst = f
	}
	return nil
}

// feedFunc puts a point's n events into the queue and returns their data
// bytes and when the worker could start on them.
type feedFunc func(n int) (bytes int, start time.Time, err error)

// measureWorker feeds n events and charges the worker's and Redis's CPU,
// from before the feed until the worker has finished every event, to the
// events. With lag, p50 and p99 are the worker's pipeline lag (now minus
// the event's ts_ms at apply, so the time in the queue included), from its
// histogram.
func (b *bencher) measureWorker(ctx context.Context, label string, w *server, names workerMetrics, n int, lag bool, feed feedFunc) (point, error) {
	p := point{label: label}
	base, err := workerCounters(ctx, w.url, names)
	if err != nil {
		return p, err
	}
	u0, err := b.usage(ctx, w)
	if err != nil {
		return p, err
	}
	bytes, start, err := feed(n)
	if err != nil {
		return p, fmt.Errorf("%s: %w", label, err)
	}
	var now workerStats
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if now, err = workerCounters(ctx, w.url, names); err != nil {
			return p, err
		}
		if now.done-base.done >= float64(n) {
			break
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%s: %v of %d finished after 5 min (log %s)", label, now.done-base.done, n, w.logPath)
		}
		time.Sleep(10 * time.Millisecond) // polling the worker's counters
	}
	elapsed := time.Since(start)
	u1, err := b.usage(ctx, w)
	if err != nil {
		return p, err
	}
	p.dataBytes = bytes / n
	p.cpuUs, p.redisUs = perEvent(u1.server-u0.server, n), perEvent(u1.redis-u0.redis, n)
	if u1.calls > u0.calls {
		p.perCall = (u1.changes - u0.changes) / (u1.calls - u0.calls)
	}
	p.worker = &workerPoint{perSec: float64(n) / elapsed.Seconds(), batch: float64(n) / (now.batches - base.batches), nacked: now.nacked - base.nacked}
	if lag {
		q := now.lag.Sub(&base.lag)
		p.worker.p50, p.worker.p99 = q.Quantile(0.5), q.Quantile(0.99)
	}
	fmt.Fprintf(b.stderr, "bench: %-27s %6d events %7.0f/s lag p50 %7.2f ms p99 %8.2f ms cpu %6.1f µs redis %5.1f µs, %.0f a batch, %.0f changes a call, %v nacked\n",
		label, n, p.worker.perSec, ms(p.worker.p50), ms(p.worker.p99), p.cpuUs, p.redisUs, p.worker.batch, p.perCall, p.worker.nacked)
	return p, nil
}

// profiled runs measure while a CPU profile of the worker (started with
// pprof) is written to path (the first 4 s of it), when path is set.
func (b *bencher) profiled(ctx context.Context, w *server, path, what string, measure func() (point, error)) (point, error) {
	if path == "" {
		return measure()
	}
	profDone := make(chan error, 1)
	go func() { profDone <- fetchProfile(ctx, w.pprofURL, path, 4) }()
	p, err := measure()
	if perr := <-profDone; err == nil && perr != nil {
		err = perr
	}
	if err == nil {
		fmt.Fprintf(b.stderr, "bench: %s CPU profile in %s (go tool pprof -top %s)\n", what, path, path)
	}
	return p, err
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
