package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// errMismatch is returned when the cache differs from the source of truth,
// after the counts are printed, so the exit status is non-zero.
var errMismatch = errors.New("verify: the cache differs from the expected state")

// runVerify compares the cache with the source of truth: the state the
// change generator wrote (-expected, from cachectl run), or a MySQL database
// (-mysql and -tables). With neither it finds the local run itself: a
// running one is asked for a consistent cut (it stops publishing, drains,
// writes its state and waits while the cache is compared), a finished one
// gives the state it wrote at its end. It counts rows missing from the
// cache, rows stale (another content, or an older version than expected),
// and deleted rows resurrected, lists the first mismatches, and fails when
// there is any.
func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := addCacheFlags(fs, getenv, "the local run's without -expected and -mysql")
	prefix := fs.String("prefix", getenv("CACHE_PREFIX"), "cache key prefix (default $CACHE_PREFIX; the local run's without -expected and -mysql)")
	expectedPath := fs.String("expected", "", "expected state, JSON lines, written by cachectl run at its end (default: ask the local run)")
	dsn := fs.String("mysql", "", "MySQL DSN to compare with instead, e.g. root@tcp(127.0.0.1:3306)/test")
	tables := fs.String("tables", "", "with -mysql: comma-separated db.table list to compare")
	configPath := fs.String("config", getenv("CACHE_CONFIG"), "with -mysql: the cache config (key and column lists), default $CACHE_CONFIG")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("verify: unexpected arguments %q", fs.Args())
	}
	if err := cache.check("verify"); err != nil {
		return err
	}
	if *dsn != "" && *expectedPath != "" {
		return usagef("verify: give -expected or -mysql (with -tables), not both")
	}
	if *dsn != "" && *tables == "" {
		return usagef("verify: -mysql needs -tables")
	}
	source := *expectedPath
	if *dsn == "" && *expectedPath == "" {
		st, err := localRun(fs, getenv, cache, prefix, false)
		if err != nil {
			return err
		}
		path, release, err := expectedOfRun(ctx, st)
		if err != nil {
			return err
		}
		defer release()
		*expectedPath = path
		source = "a consistent cut of the running local run"
		if !st.Live() {
			source = path + ", written at the end of the local run"
		}
	}
	cc, err := cache.open(getenv("REDIS_CA_CERT"))
	if err != nil {
		return err
	}
	defer cc.Close()
	var v localrun.Verdict
	if *dsn != "" {
		if v, err = verifyDatabase(ctx, cc, *dsn, *configPath, *prefix, strings.Split(*tables, ",")); err != nil {
			return err
		}
		source = "MySQL " + *tables
		if cc.mc != nil {
			source += "; memcached cannot list keys, so rows cached but gone from the database (resurrected) are not looked for"
		}
	} else if v, err = verifyExpected(ctx, cc.records(*prefix), *prefix, *expectedPath); err != nil {
		return err
	}
	for _, m := range v.Mismatches {
		fmt.Fprintf(stdout, "%-11s %s%s\n  want %s\n  got  %s\n", m.Kind, *prefix, m.Key, m.Want, m.Got)
	}
	fmt.Fprintf(stdout, "verify: checked=%d ok=%d missing=%d stale=%d resurrected=%d (against %s)\n",
		v.Checked, v.Checked-v.Missing-v.Stale-v.Resurrected, v.Missing, v.Stale, v.Resurrected, source)
	if !v.OK() {
		return errMismatch
	}
	return nil
}

// expectedOfRun is the expected state of the local run st: a cut of a
// running one (held until release), or the file a finished one wrote.
func expectedOfRun(ctx context.Context, st *localrun.State) (path string, release func(), err error) {
	switch {
	case st == nil:
		return "", nil, usagef("verify: no local run found (cachectl run, make run); give -expected FILE or -mysql DSN -tables db.t,...")
	case st.Live() && st.Control == "":
		return "", nil, fmt.Errorf("verify: the local run (pid %d) serves no control endpoint (-bridge \"\"), so it cannot be asked for a cut; verify after it ends", st.PID)
	case st.Live():
		return localrun.RequestCut(ctx, st.Control)
	case st.Expected == "":
		return "", nil, fmt.Errorf("verify: the last local run (pid %d) ended without writing its expected state (it was interrupted, or changes were still pending)", st.PID)
	}
	return st.Expected, func() {}, nil
}

func verifyExpected(ctx context.Context, read localrun.Records, prefix, path string) (localrun.Verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return localrun.Verdict{}, fmt.Errorf("verify: %w", err)
	}
	expected, err := changegen.ReadExpected(f)
	f.Close()
	if err != nil {
		return localrun.Verdict{}, fmt.Errorf("verify: %s: %w", path, err)
	}
	return localrun.VerifyRecords(ctx, read, prefix, expected)
}

// verifyDatabase compares every row of the tables in MySQL (read as
// canonical JSON by mysqlrow, keys as the cache builds them) with the cache,
// and, on Redis, every cached row of those tables with the database: a
// cached row the database lacks is resurrected. memcached cannot list its
// keys, so there only the database's rows are compared.
func verifyDatabase(ctx context.Context, cc cacheConn, dsn, configPath, prefix string, tables []string) (localrun.Verdict, error) {
	var v localrun.Verdict
	cfg := cdc.DefaultConfig()
	if configPath != "" {
		var err error
		if cfg, err = cdc.LoadConfig(configPath); err != nil {
			return v, fmt.Errorf("verify: %w", err)
		}
	}
	cfg.Prefix = prefix
	db, err := mysqlrow.Open(dsn)
	if err != nil {
		return v, fmt.Errorf("verify: %w", err)
	}
	defer db.Close()
	reader := mysqlrow.NewReader(db, cfg)
	read := cc.records(prefix)
	// Mismatches name keys without the prefix, as the expected-state file does.
	note := func(kind, key, want, got string) {
		v.Note(localrun.Mismatch{Key: strings.TrimPrefix(key, prefix), Kind: kind, Want: want, Got: got})
	}
	for _, table := range tables {
		table = strings.TrimSpace(table)
		pks, err := primaryKeys(ctx, db, table, cfg)
		if err != nil {
			return v, err
		}
		rows, err := reader.Rows(ctx, table, pks)
		if err != nil {
			return v, fmt.Errorf("verify: %s: %w", table, err)
		}
		slices.SortFunc(rows, func(a, b mysqlrow.Row) int { return strings.Compare(a.Key, b.Key) })
		inDB := make(map[string]bool, len(rows))
		for start := 0; start < len(rows); start += 500 {
			batch := rows[start:min(start+500, len(rows))]
			keys := make([]string, len(batch))
			for i, r := range batch {
				keys[i] = r.Key
			}
			recs, err := read(ctx, keys)
			if err != nil {
				return v, err
			}
			for i, r := range batch {
				inDB[r.Key] = true
				v.Checked++
				switch got := recs[i]; {
				case !got.HasRow:
					note("missing", r.Key, "row: "+string(r.JSON), "no row")
				case string(got.Row) != string(r.JSON):
					note("stale", r.Key, "row: "+string(r.JSON), "row: "+string(got.Row))
				}
			}
		}
		if cc.rdb == nil {
			continue
		}
		rdb := cc.rdb
		iter := rdb.Scan(ctx, 0, cdc.TableKeyPrefix(prefix, table)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			if inDB[key] {
				continue
			}
			got, err := rdb.HGet(ctx, key, "d").Result()
			if errors.Is(err, redis.Nil) {
				continue // a tombstone or marker: the row is rightly absent
			}
			if err != nil {
				return v, fmt.Errorf("verify: %w", err)
			}
			v.Checked++
			note("resurrected", key, "no row in the database", "row: "+got)
		}
		if err := iter.Err(); err != nil {
			return v, fmt.Errorf("verify: %w", err)
		}
	}
	return v, nil
}

// primaryKeys lists the key values of every row of table: the configured
// key columns, else the primary key.
func primaryKeys(ctx context.Context, db *sql.DB, table string, cfg *cdc.Config) ([][]any, error) {
	schema, name, ok := strings.Cut(table, ".")
	if !ok {
		return nil, fmt.Errorf("verify: table %q is not db.table", table)
	}
	var exists int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
		schema, name).Scan(&exists); err != nil {
		return nil, fmt.Errorf("verify: %s: %w", table, err)
	}
	if exists == 0 {
		return nil, fmt.Errorf("verify: table %s does not exist in the database", table)
	}
	t, _ := cfg.Lookup(table)
	cols := t.Key
	if len(cols) == 0 {
		rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, schema, name)
		if err != nil {
			return nil, fmt.Errorf("verify: key of %s: %w", table, err)
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("verify: key of %s: %w", table, err)
			}
			cols = append(cols, c)
		}
		rows.Close()
		if len(cols) == 0 {
			return nil, fmt.Errorf("verify: %s has no primary key and the config names no key columns", table)
		}
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "`" + strings.ReplaceAll(c, "`", "``") + "`"
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM `" + schema + "`.`" + name + "`"
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("verify: %s: %w", table, err)
	}
	defer rows.Close()
	var pks [][]any
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range raw {
			dest[i] = &raw[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("verify: %s: %w", table, err)
		}
		pk := make([]any, len(cols))
		for i, b := range raw {
			if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
				pk[i] = n
			} else {
				pk[i] = string(b)
			}
		}
		pks = append(pks, pk)
	}
	return pks, rows.Err()
}
