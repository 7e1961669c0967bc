// Command cachectl is the operator's tool for cloudsql-cache: it runs the
// local pipeline, shows status, replays parked messages, verifies the cache
// against the source, loads and benchmarks the push function, and prices a
// deployment.
package main

import (
	"context"
	"errors"
	"flag"
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
	// Not in the usage list: run starts this binary as the function or the worker.
	"function": {"serve the push function, configured from the environment like the deployed one", runFunction},
	"worker":   {"run the pull or Kafka worker, configured from the environment like the deployed one", runWorker},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if code := exitCode(err); code != 0 {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "cachectl:", err)
		}
		os.Exit(code)
	}
}

// errUsage is returned after the usage text has been printed for a missing
// command.
var errUsage = errors.New("usage")

// usageError is a command line that cannot run (an unknown command or flag,
// a bad flag value, a stray argument): exit status 2, as flag and most
// Unix tools use.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parseFlags parses args into fs: -h is flag.ErrHelp (exit 0), any other
// parse error a usage error (flag has printed it and the usage already).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// exitCode is the process's exit status for run's error: 0 for success and
// for help, 2 for a usage error, 1 for anything else (a failure while
// running, a mismatch found by verify).
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 { // cachectl help CMD = cachectl CMD -h
			if cmd, ok := commands[args[1]]; ok {
				return cmd.run(ctx, []string{"-h"}, getenv, stdout, stderr)
			}
		}
		usage(stdout)
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return usagef("unknown command %q", args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cachectl <command> [flags]\n\ncommands:")
	for _, name := range []string{"run", "status", "replay", "verify", "load", "cost", "schema"} {
		fmt.Fprintf(w, "  %-7s %s\n", name, commands[name].help)
	}
	fmt.Fprintln(w, "\ncachectl <command> -h shows the command's flags.")
}
