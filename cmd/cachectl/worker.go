package main

import (
	"context"
	"io"

	"github.com/cloudsql-cache/cloudsql-cache/worker/serve"
)

// runWorker runs the worker as worker/cmd does (DELIVERY=pull or kafka,
// configured from the environment) until Ctrl-C. cachectl run -delivery
// pull|kafka starts this binary this way, as it does for the function.
func runWorker(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return envCommand("worker", "runs the streaming-pull or Kafka worker (DELIVERY=pull|kafka), serving /metrics and /healthz on $PORT", serve.Run)(ctx, args, getenv, stdout, stderr)
}
