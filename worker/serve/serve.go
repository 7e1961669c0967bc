// Package serve runs the worker (package worker) as a process does:
// configured from the environment (worker.FromEnv; DELIVERY=pull for
// Pub/Sub streaming pull, DELIVERY=kafka for a Kafka consumer group), it
// applies the change stream to the cache until its context ends, then
// drains and returns. It prints "worker listening on ADDR" once /metrics
// and /healthz are served. It is a package, not only a main, so that one
// binary can carry it: worker/cmd is the container's entry point, and
// cachectl runs itself as the worker (`cachectl worker`) for
// `cachectl run -delivery pull|kafka`, so a built cachectl needs no source
// tree.
//
// PPROF_ADDR, when set (a loopback address such as 127.0.0.1:6060), also
// serves net/http/pprof there, never on PORT, for profiling under load
// (make bench -pull-cpuprofile uses it).
package serve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
	"github.com/cloudsql-cache/cloudsql-cache/worker"
)

// Run serves the worker until ctx ends (SIGINT/SIGTERM in a main), then
// drains in-flight batches and flushes the checkpoint. It takes no
// arguments.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("no arguments expected (configure with environment variables), got %q", args)
	}
	// go-redis has one logger for the whole process (redis.SetLogger), not
	// one per client, and by default it writes plain-text lines to stderr
	// among our JSON ones. It is set here, once, by the code that owns the
	// process and its stdout, rather than by a library constructor that
	// would change a global behind its caller's back.
	redis.SetLogger(svcenv.RedisLogger{Log: svcenv.NewLogger(stdout)})
	cfg, err := worker.FromEnv(getenv)
	if err != nil {
		return err
	}
	w, err := worker.New(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	if addr := getenv("PPROF_ADDR"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("PPROF_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close() // not graceful: a running profile would hold the exit
		fmt.Fprintf(stderr, "worker serving net/http/pprof on http://%s/debug/pprof/\n", ln.Addr())
	}
	fmt.Fprintf(stderr, "worker listening on %s\n", w.Addr())
	return w.Run(ctx)
}
