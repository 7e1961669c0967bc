package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// runSchemaSync reads each table's key columns and column types from
// information_schema and writes them to <prefix>__cdc:schema in one HSET.
// It runs on the Debezium VM at start and on a timer; the function and the
// workers pick the result up within 30 s.
func runSchemaSync(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("schema sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("mysql", getenv("MYSQL_DSN"), "MySQL DSN, e.g. user:pass@tcp(127.0.0.1:3306)/ (default $MYSQL_DSN)")
	tables := fs.String("tables", "", "comma-separated db.table list")
	redisURL := fs.String("redis", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"), "Redis URL")
	prefix := fs.String("prefix", getenv("CACHE_PREFIX"), "cache key prefix (default $CACHE_PREFIX)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("schema sync: unexpected arguments %q", fs.Args())
	}
	list := splitTables(*tables)
	if *dsn == "" || len(list) == 0 {
		return errors.New("schema sync: -mysql and -tables are required")
	}
	now, err := cliNow(getenv)
	if err != nil {
		return fmt.Errorf("schema sync: %w", err)
	}
	db, err := mysqlrow.Open(*dsn)
	if err != nil {
		return fmt.Errorf("schema sync: %w", err)
	}
	defer db.Close()
	entries, err := schema.Read(ctx, db, list, now)
	if err != nil {
		return fmt.Errorf("schema sync: %w", err)
	}
	rdb, err := redisClient(*redisURL, getenv("REDIS_CA_CERT"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := schema.Write(ctx, rdb, *prefix, entries); err != nil {
		return fmt.Errorf("schema sync: %w", err)
	}
	slices.Sort(list)
	for _, t := range list {
		ts := entries[t]
		fmt.Fprintf(stdout, "synced %s: key (%s), %d columns\n", t, strings.Join(ts.Key, ", "), len(ts.Columns))
	}
	fmt.Fprintf(stdout, "wrote %d tables to %s\n", len(list), cdc.RegistryKey(*prefix))
	return nil
}
