package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// schemaCommands are the subcommands of cachectl schema.
var schemaCommands = map[string]command{
	"sync": {"read key columns and column types from MySQL into the cache's column registry", runSchemaSync},
	"show": {"print the column registry", runSchemaShow},
	"yaml": {"print the column registry as cache config (key: and types:)", runSchemaYAML},
}

// runSchema dispatches cachectl schema <sync|show|yaml>.
func runSchema(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		schemaUsage(stderr)
		return errUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		schemaUsage(stdout)
		return nil
	}
	cmd, ok := schemaCommands[args[0]]
	if !ok {
		schemaUsage(stderr)
		return usagef("schema: unknown subcommand %q", args[0])
	}
	return cmd.run(ctx, args[1:], getenv, stdout, stderr)
}

func schemaUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: cachectl schema <subcommand> [flags]\n\nsubcommands:")
	for _, name := range []string{"sync", "show", "yaml"} {
		fmt.Fprintf(w, "  %-5s %s\n", name, schemaCommands[name].help)
	}
}

// cliNow is the clock of the schema commands: $CACHECTL_NOW (RFC 3339) in
// tests, else the time.
func cliNow(getenv func(string) string) (time.Time, error) {
	v := getenv("CACHECTL_NOW")
	if v == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("CACHECTL_NOW: %w", err)
	}
	return t, nil
}

// splitTables reads a -tables list, "db.t,db.u".
func splitTables(list string) []string {
	var out []string
	for _, t := range strings.Split(list, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// registryRead is the command line of a subcommand that reads the registry
// (schema show, schema yaml): where the registry is and which of its tables.
type registryRead struct{ redisURL, caFile, prefix, tables string }

// parseRegistryRead parses the flags the registry-reading subcommands
// share; name is the subcommand's, for usage and messages.
func parseRegistryRead(name string, args []string, getenv func(string) string, stderr io.Writer) (registryRead, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	r := registryRead{caFile: getenv("REDIS_CA_CERT")}
	fs.StringVar(&r.redisURL, "redis", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"), "Redis URL")
	fs.StringVar(&r.prefix, "prefix", getenv("CACHE_PREFIX"), "cache key prefix (default $CACHE_PREFIX)")
	fs.StringVar(&r.tables, "tables", "", "comma-separated db.table list (default: every table)")
	if err := parseFlags(fs, args); err != nil {
		return r, err
	}
	if fs.NArg() > 0 {
		return r, usagef("%s: unexpected arguments %q", name, fs.Args())
	}
	return r, nil
}

// load reads the registry and keeps the tables asked for (all when none
// were), sorted, and the entries it could not parse.
func (r registryRead) load(ctx context.Context) ([]string, *cdc.Registry, []string, error) {
	rdb, err := redisClient(r.redisURL, r.caFile)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rdb.Close()
	reg, bad, err := schema.Load(ctx, rdb, r.prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	names := splitTables(r.tables)
	for _, n := range names {
		if reg.Lookup(n) == nil {
			return nil, nil, nil, fmt.Errorf("table %s is not in the registry %s (run cachectl schema sync)", n, cdc.RegistryKey(r.prefix))
		}
	}
	if len(names) == 0 {
		for n := range reg.Tables {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, reg, bad, nil
}
