// Command cmd is the worker's container entry point: it runs the worker
// (package serve says how) until SIGINT or SIGTERM, then drains and exits.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudsql-cache/cloudsql-cache/worker/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := serve.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudsql-cache worker:", err)
		os.Exit(1)
	}
}
