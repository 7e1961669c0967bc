// Command pubsubfake serves the fake Pub/Sub (internal/pubsubfake: pstest
// with a batching StreamingPull) in its own process, for
// PUBSUB_EMULATOR_HOST. It prints "listening on ADDR" once it serves and
// runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pubsubfake:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pubsubfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8085", "address to listen on (port 0: any free port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := pubsubfake.Start(*addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "listening on %s\n", srv.Addr)
	<-ctx.Done()
	return nil
}
