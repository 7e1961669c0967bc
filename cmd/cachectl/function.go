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
	return envCommand("function", "serves the push function on $PORT", serve.Run)(ctx, args, getenv, stdout, stderr)
}

// envCommand is a subcommand that takes no flags, only the environment, as
// the deployed process it runs does: -h prints what it is, anything else on
// the command line is a usage error.
func envCommand(name, what string, serve func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error) func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of %s: %s, configured from the environment like the deployed one (docs/configuration.md); it takes no flags.\n", name, what)
		}
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("%s: unexpected arguments %q", name, fs.Args())
		}
		return serve(ctx, nil, getenv, stdout, stderr)
	}
}
