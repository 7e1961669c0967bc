package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

// startMemcached runs a private memcached (-M: it answers "out of memory"
// rather than evicting, as the store requires) on a free loopback port and
// returns its address, the process and a stop function.
func startMemcached(ctx context.Context) (string, *exec.Cmd, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("memcached", memcachedArgs(port, os.Geteuid())...)
	stop, err := startDaemon(ctx, cmd, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, cmd, stop, err
}

// memcachedArgs are the private memcached's flags: loopback only, no UDP,
// 1 GB, no eviction; as root (euid 0) -u root, as memcached refuses root
// without -u.
func memcachedArgs(port, euid int) []string {
	args := []string{"-M", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "1024", "-c", "1024"}
	if euid == 0 {
		args = append(args, "-u", "root")
	}
	return args
}

// memcachedPoint measures the push function (fnBin) with
// CACHE_BACKEND=memcached on a private memcached, at concurrency 50 with
// the headline's schema-enveloped events after a warm-up; the point's Redis
// CPU is the memcached process's, from /proc.
func (b *bencher) memcachedPoint(ctx context.Context, fnBin string) (point, error) {
	addr, mc, stop, err := startMemcached(ctx)
	if err != nil {
		return point{}, err
	}
	defer stop()
	// No REJECT_TOPIC: a parked event is answered 503, which fails the
	// point (measure allows 1% non-2xx), so the figures are of applies.
	fn, err := start(ctx, fnBin, b.prefix+"mc:", b.redisURL(), filepath.Join(b.tmp, "function-memcached.log"),
		append(b.procsEnv(), "CACHE_BACKEND=memcached", "MEMCACHE_ADDRS="+addr)...)
	if err != nil {
		return point{}, err
	}
	defer fn.stop()
	fn.metrics = true
	fn.cacheCPU = func(context.Context) (time.Duration, error) { return bench.ProcCPU(mc.Process.Pid, b.ticks) }
	gen, err := bench.NewGenerator(bench.DefaultEventOptions(true), 4)
	if err != nil {
		return point{}, err
	}
	if _, err := b.measure(ctx, "warm-up", fn, gen.Batch(2000), bench.LoadConfig{Concurrency: 50}); err != nil {
		return point{}, err
	}
	p, err := b.measure(ctx, "c=50 memcached (cache CPU: memcached's)", fn, gen.Batch(b.cfg.events), bench.LoadConfig{Concurrency: 50, Duration: b.cfg.pointTime})
	if err == nil && p.perCall == 0 {
		err = errors.New("memcached: the function applied no changes")
	}
	return p, err
}
