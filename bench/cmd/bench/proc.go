package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is a push endpoint process started by the benchmark.
type server struct {
	cmd     *exec.Cmd
	url     string // http://127.0.0.1:<port>/
	logPath string
	done    chan struct{} // closed when the process has exited
	stopped bool
	metrics bool // serves the function's /metrics, with the store's counters
	// pprofURL is the base URL of its net/http/pprof server, when it has one.
	pprofURL string
	// cacheCPU, when set, reads the CPU its cache server has used (memcached);
	// nil: Redis's, from INFO.
	cacheCPU func(context.Context) (time.Duration, error)
}

// applyCounters reads the function's apply script calls and the changes
// they carried from /metrics; zeros for a server without them.
func (s *server) applyCounters() (calls, changes float64, err error) {
	if !s.metrics {
		return 0, 0, nil
	}
	resp, err := http.Get(s.url + "metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || (name != "cdc_apply_calls_total" && name != "cdc_apply_call_changes_total") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		if name == "cdc_apply_calls_total" {
			calls = f
		} else {
			changes = f
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/metrics of %s lacks the apply counters", s.url)
	}
	return calls, changes, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// start runs bin with a free port, the Redis URL, the key prefix and
// extraEnv ("NAME=value") as its only environment (so nothing from the
// caller's shell changes its configuration), logs to logPath, and waits
// until it answers.
func start(ctx context.Context, bin, prefix, redisURL, logPath string, extraEnv ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PORT=" + strconv.Itoa(port), "REDIS_URL=" + redisURL, "CACHE_PREFIX=" + prefix}
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d/", port), logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx, 15*time.Second); err != nil {
		s.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s: %w\n%s", bin, err, log)
	}
	return s, nil
}

// waitReady polls until the server answers any HTTP request on /healthz.
func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(s.url + "healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited before serving")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", limit, err)
		}
	}
}

// stop sends SIGTERM, and SIGKILL if the process has not exited in 10 s.
func (s *server) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// scanPrefix calls fn with each batch of keys under prefix (which must hold
// no glob characters).
func scanPrefix(ctx context.Context, rdb *redis.Client, prefix string, fn func([]string) error) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// deletePrefix unlinks every key under prefix and returns how many.
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	err := scanPrefix(ctx, rdb, prefix, func(keys []string) error {
		n += len(keys)
		return rdb.Unlink(ctx, keys...).Err()
	})
	return n, err
}

// countKeys counts the keys under prefix.
func countKeys(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	n := 0
	err := scanPrefix(ctx, rdb, prefix, func(keys []string) error { n += len(keys); return nil })
	return n, err
}

// startRedis runs a private redis-server (no persistence) on a free
// loopback port with its files in dir, and returns its address and a stop
// function.
func startRedis(ctx context.Context, dir string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	stop, err := startDaemon(ctx, cmd, func() bool { return rdb.Ping(ctx).Err() == nil })
	return addr, stop, err
}

// startDaemon starts a private server process, waits up to 10 s until
// ready says it answers, and returns a stop function (SIGTERM, then
// SIGKILL after 10 s). Its output is in the error when it exits at start.
func startDaemon(ctx context.Context, cmd *exec.Cmd, ready func() bool) (func(), error) {
	name := filepath.Base(cmd.Path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		select {
		case <-done:
			return nil, fmt.Errorf("%s exited at start: %s", name, out.Bytes())
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s not answering after 10s", name)
		}
	}
	return stop, nil
}
