// Package serve runs the push function on its own HTTP server: the push
// handler at "/", Prometheus text at /metrics, readiness at /healthz,
// configured from the environment like the deployed function (see
// function.NewFromEnv), stopping gracefully when its context ends and
// flushing the store's checkpoint. It is a package, not only a main, so
// that one binary can carry it: function/cmd is the container's entry
// point, and cachectl runs itself as the function for `cachectl run`, so a
// built cachectl needs no source tree.
//
// PPROF_ADDR, when set (for example 127.0.0.1:6060), also serves
// net/http/pprof under /debug/pprof/ on that separate address, so the
// function can be profiled under load (bench -cpuprofile does this). It is
// never served on PORT: profiles expose the process's internals and a CPU
// profile costs CPU, so keep it on a loopback address. Unset, nothing is
// served beyond PORT.
//
// It does not use funcframework.Start: that serves a private ServeMux with
// http.ListenAndServe, so it can neither add /metrics nor shut down
// gracefully.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
)

// shutdownGrace bounds how long in-flight pushes and the final flush may take.
const shutdownGrace = 8 * time.Second

// Run serves the push function until ctx ends (SIGINT/SIGTERM in a main),
// then shuts down within shutdownGrace. It takes no arguments.
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
	svc, err := function.NewFromEnv(ctx, getenv, function.WithLogOutput(stdout))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ":"+svc.Port)
	if err != nil {
		return closeAfter(svc, fmt.Errorf("PORT: %w", err))
	}
	var pprofSrv *http.Server
	pprofServed := make(chan error, 1)
	if addr := getenv("PPROF_ADDR"); addr != "" {
		pln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = ln.Close()
			return closeAfter(svc, fmt.Errorf("PPROF_ADDR: %w", err))
		}
		fmt.Fprintf(stderr, "cloudsql-cache: serving net/http/pprof on http://%s/debug/pprof/\n", pln.Addr())
		pprofSrv = &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { pprofServed <- pprofSrv.Serve(pln) }()
	}
	fmt.Fprintf(stderr, "cloudsql-cache: serving the push function on http://%s/ (metrics at /metrics)\n", ln.Addr())
	srv := newServer(svc.Mux(), pushTimeouts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	case serveErr = <-pprofServed:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if pprofSrv != nil {
		// Not graceful: a running CPU profile would hold the shutdown for
		// its whole duration.
		_ = pprofSrv.Close()
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := svc.Close(shutdownCtx); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	fmt.Fprintln(stderr, "cloudsql-cache: stopped")
	return serveErr
}

// timeouts are the push server's connection timeouts.
type timeouts struct {
	// header bounds reading the request headers, read the whole request
	// with its body (a stalled upload must not hold its memory budget
	// until Cloud Run's request timeout), idle a kept-alive connection
	// between requests.
	header, read, idle time.Duration
}

// pushTimeouts fit Cloud Run. read is half the default request timeout
// (60 s, the ack deadline): a 15 MB push from Google's front end arrives in
// well under a second, and the apply still has time to answer before Pub/Sub
// gives up. idle is long because Cloud Run's proxy reuses its connections:
// an idle one costs a few KB, and a server that closes first races the
// proxy's next request on it (a failed delivery, redelivered).
var pushTimeouts = timeouts{header: 10 * time.Second, read: 30 * time.Second, idle: 10 * time.Minute}

// newServer returns the HTTP server of the push function. There is no
// write timeout: the handler's own Redis deadlines bound its work, and
// Cloud Run's request timeout bounds the rest.
func newServer(h http.Handler, t timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.header, ReadTimeout: t.read, IdleTimeout: t.idle}
}

// closeAfter closes svc after a start-up failure err.
func closeAfter(svc *function.Service, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return errors.Join(err, svc.Close(ctx))
}

// pprofMux serves net/http/pprof's handlers on a mux of its own, never on
// the push function's.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
