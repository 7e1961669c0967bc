// Command fnpprof serves the push function exactly as function/cmd does
// (function.NewFromEnv and its Mux) plus net/http/pprof under /debug/pprof/,
// so `go run ./bench/cmd/bench -cpuprofile` can profile the function under
// load without a profiling hook in the production binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
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
		fmt.Fprintln(os.Stderr, "fnpprof:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	svc, err := function.NewFromEnv(ctx, getenv, function.WithLogOutput(stdout))
	if err != nil {
		return err
	}
	mux := svc.Mux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", ":"+svc.Port)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fnpprof: serving on http://%s/ with /debug/pprof/\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	shut, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, srv.Shutdown(shut), svc.Close(shut))
}
