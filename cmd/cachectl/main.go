// Command cachectl is the operator's tool for cloudsql-cache: it runs the
// local pipeline, shows status, replays parked messages, verifies the cache
// against the source, loads and benchmarks the push function, and prices a
// deployment.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its one-line help and its entry point.
type command struct {
	help string
	run  func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"run":    {"run the local pipeline: Pub/Sub fake, push bridge, function, change generator", runRun},
	"status": {"show checkpoints, lag, parked messages and the bridge's backlog", runStatus},
	"replay": {"push parked messages back through the function", runReplay},
	"verify": {"compare the cache with the source of truth", runVerify},
	"load":   {"post push envelopes at the function at a set rate or concurrency", runLoad},
	"cost":   {"print a monthly cost breakdown from list prices", runCost},
	"schema": {"sync, show or print as config the column registry (key columns and types from MySQL)", runSchema},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cachectl:", err)
		os.Exit(1)
	}
}

// errUsage is returned after the usage text has been printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return errUsage
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cachectl <command> [flags]\n\ncommands:")
	for _, name := range []string{"run", "status", "replay", "verify", "load", "cost", "schema"} {
		fmt.Fprintf(w, "  %-7s %s\n", name, commands[name].help)
	}
}
