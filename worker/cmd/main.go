// Command cmd is the cloudsql-cache worker (package worker): configured from
// the environment (worker.FromEnv; DELIVERY=pull for Pub/Sub streaming
// pull), it applies the change stream to the cache until SIGTERM or SIGINT,
// then drains and exits. It prints "worker listening on ADDR" once
// /metrics and /healthz are served.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudsql-cache/cloudsql-cache/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudsql-cache worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("no arguments expected (configure with environment variables), got %q", args)
	}
	cfg, err := worker.FromEnv(getenv)
	if err != nil {
		return err
	}
	w, err := worker.New(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "worker listening on %s\n", w.Addr())
	return w.Run(ctx)
}
