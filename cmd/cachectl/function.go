package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/cloudsql-cache/cloudsql-cache/function/serve"
)

// runFunction serves the push function as function/cmd does, configured
// from the environment (PORT, REDIS_URL, CACHE_CONFIG, ...), until Ctrl-C.
// cachectl run starts this binary this way, so a built cachectl runs the
// local pipeline without the source tree.
func runFunction(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("function", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of function: serves the push function on $PORT, configured from the environment like the deployed function (docs/configuration.md); it takes no flags.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("function: unexpected arguments %q", fs.Args())
	}
	return serve.Run(ctx, nil, getenv, stdout, stderr)
}
