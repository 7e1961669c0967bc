// Command cmd serves the push function locally (or in any container) on its
// own HTTP server: the push handler at "/", Prometheus text at /metrics and
// a liveness check at /healthz, configured from the environment like the
// deployed function (see function.NewFromEnv). It stops gracefully on
// SIGINT/SIGTERM, flushing the store's checkpoint.
//
// It does not use funcframework.Start: that serves a private ServeMux with
// http.ListenAndServe, so it can neither add /metrics nor shut down
// gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudsql-cache:", err)
		os.Exit(1)
	}
}

// shutdownGrace bounds how long in-flight pushes and the final flush may take.
const shutdownGrace = 8 * time.Second

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("no arguments expected (configure with environment variables), got %q", args)
	}
	svc, err := function.NewFromEnv(ctx, getenv, function.WithLogOutput(stdout))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", ":"+svc.Port)
	if err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		return errors.Join(fmt.Errorf("PORT: %w", err), svc.Close(closeCtx))
	}
	fmt.Fprintf(stderr, "cloudsql-cache: serving the push function on http://%s/ (metrics at /metrics)\n", ln.Addr())
	srv := &http.Server{Handler: svc.Mux(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
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
