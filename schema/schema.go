// Package schema is the column registry: each table's key columns and the
// MySQL type of every column, read from information_schema and kept in the
// cache (<prefix>__cdc:schema), so that compact messages (no schema, no
// Debezium key) decode to the same canonical rows as full ones.
//
// Read takes the facts from MySQL 8 or MariaDB, Write stores them, Load reads
// a snapshot back, and a Loader keeps a decoder's snapshot fresh.
package schema

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// jsonCheck matches MariaDB's check clause on a JSON column: json_valid(`c`).
var jsonCheck = regexp.MustCompile("(?i)^\\s*json_valid\\(\\s*`?([^`)]+)`?\\s*\\)\\s*$")

// Read reads the registry entries of tables ("db.table") from the
// database's information_schema, stamped with now. A table that does not
// exist is an error; one without a primary key gets an empty key (the
// config's key: or the Debezium key must then name it).
func Read(ctx context.Context, db *sql.DB, tables []string, now time.Time) (map[string]*cdc.TableSchema, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, fmt.Errorf("schema: server version: %w", err)
	}
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	out := make(map[string]*cdc.TableSchema, len(tables))
	for _, table := range tables {
		ts, err := readTable(ctx, db, table, mariadb, now)
		if err != nil {
			return nil, err
		}
		out[table] = ts
	}
	return out, nil
}

func readTable(ctx context.Context, db *sql.DB, table string, mariadb bool, now time.Time) (*cdc.TableSchema, error) {
	dbName, name, ok := strings.Cut(table, ".")
	if !ok || dbName == "" || name == "" || strings.Contains(name, ".") {
		return nil, fmt.Errorf("schema: table %q is not db.table", table)
	}
	type col struct{ name, dataType, colType string }
	var cols []col
	err := query(ctx, db, func(rows *sql.Rows) error {
		var c col
		if err := rows.Scan(&c.name, &c.dataType, &c.colType); err != nil {
			return err
		}
		cols = append(cols, c)
		return nil
	}, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, dbName, name)
	if err != nil {
		return nil, fmt.Errorf("schema: columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("schema: table %s not found", table)
	}
	var key []string
	err = query(ctx, db, func(rows *sql.Rows) error {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		key = append(key, k)
		return nil
	}, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, dbName, name)
	if err != nil {
		return nil, fmt.Errorf("schema: primary key of %s: %w", table, err)
	}
	// MariaDB's JSON is longtext guarded by json_valid(col); MySQL's is json.
	// Debezium's MariaDB connector sends both as the document's text.
	jsonCols := map[string]bool{}
	if mariadb {
		err = query(ctx, db, func(rows *sql.Rows) error {
			var clause string
			if err := rows.Scan(&clause); err != nil {
				return err
			}
			if m := jsonCheck.FindStringSubmatch(clause); m != nil {
				jsonCols[m[1]] = true
			}
			return nil
		}, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, dbName, name)
		if err != nil {
			return nil, fmt.Errorf("schema: check constraints of %s: %w", table, err)
		}
	}
	sc := make([]cdc.SchemaColumn, len(cols))
	for i, c := range cols {
		typ := c.colType
		if strings.EqualFold(c.dataType, "longtext") && jsonCols[c.name] {
			typ = "json"
		}
		sc[i] = cdc.SchemaColumn{Name: c.name, Type: typ}
	}
	ts, err := cdc.NewTableSchema(key, sc, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("schema: %s: %w", table, err)
	}
	return ts, nil
}

func query(ctx context.Context, db *sql.DB, scan func(*sql.Rows) error, q string, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Write stores entries in the registry hash, one field per table, in one
// HSET: readers see every table of one sync or none of it. Tables not in
// entries are left as they are.
func Write(ctx context.Context, rdb redis.Cmdable, prefix string, entries map[string]*cdc.TableSchema) error {
	if len(entries) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(entries))
	for table, ts := range entries {
		b, err := encode(ts)
		if err != nil {
			return fmt.Errorf("schema: %s: %w", table, err)
		}
		args = append(args, table, b)
	}
	if err := rdb.HSet(ctx, cdc.RegistryKey(prefix), args...).Err(); err != nil {
		return fmt.Errorf("schema: write %s: %w", cdc.RegistryKey(prefix), err)
	}
	return nil
}

// encode is the registry's JSON for one entry, as the design gives it:
// {"key":[...],"columns":[{"name":..,"type":..},...],"read_at_ms":N}.
func encode(ts *cdc.TableSchema) ([]byte, error) {
	if ts.Key == nil {
		cp := *ts
		cp.Key = []string{}
		ts = &cp
	}
	return json.Marshal(ts)
}

// Load reads the whole registry hash. An entry that does not decode is
// left out and named in bad (its table then decodes as if unregistered),
// so one broken field cannot take the others with it; err is for Redis.
func Load(ctx context.Context, rdb redis.Cmdable, prefix string) (reg *cdc.Registry, bad []string, err error) {
	fields, err := rdb.HGetAll(ctx, cdc.RegistryKey(prefix)).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("schema: read %s: %w", cdc.RegistryKey(prefix), err)
	}
	reg = &cdc.Registry{Tables: make(map[string]*cdc.TableSchema, len(fields))}
	for table, v := range fields {
		ts, err := cdc.ParseTableSchema([]byte(v))
		if err != nil {
			bad = append(bad, table+": "+err.Error())
			continue
		}
		reg.Tables[table] = ts
	}
	return reg, bad, nil
}

// DefaultInterval is how often a Loader reads the registry again.
const DefaultInterval = 30 * time.Second

// Loader keeps a column registry snapshot fresh for a decoder (the push
// function's or a worker's): Start loads it once, Run reloads it every
// Interval and hands each snapshot to Set.
type Loader struct {
	// Redis holds the registry.
	Redis redis.Cmdable
	// Prefix is the cache key prefix.
	Prefix string
	// Set receives every snapshot loaded (debezium.Decoder.SetRegistry).
	Set func(*cdc.Registry)
	// Interval between loads; DefaultInterval when zero.
	Interval time.Duration
	// Log reports failed loads and bad entries; slog.Default when nil.
	Log *slog.Logger

	failed bool // the last load failed: Run retries sooner
}

// Load reads the registry once and hands it to Set. On a Redis error the
// previous snapshot stays in use. Not safe for concurrent use with Run.
func (l *Loader) Load(ctx context.Context) error {
	reg, bad, err := Load(ctx, l.Redis, l.Prefix)
	l.failed = err != nil
	if err != nil {
		return err
	}
	for _, b := range bad {
		l.log().WarnContext(ctx, "column registry entry ignored", "entry", b)
	}
	l.Set(reg)
	return nil
}

// Start is how a process loads its registry at start (the push function
// and the workers alike): when the cache answered, one Load bounded by
// timeout, a failure logged (Run retries it soon); then Run in the
// background until ctx ends. The returned channel is closed when Run has
// stopped.
func (l *Loader) Start(ctx context.Context, cacheAnswered bool, timeout time.Duration, runCtx context.Context) (done <-chan struct{}) {
	if cacheAnswered {
		loadCtx, cancel := context.WithTimeout(ctx, timeout)
		if err := l.Load(loadCtx); err != nil {
			l.log().WarnContext(ctx, "column registry not loaded at start; retrying", "err", err.Error())
		}
		cancel()
	} else {
		l.failed = true
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		l.Run(runCtx)
	}()
	return ch
}

// StartTimeout bounds a Loader's first load in Start, so an unanswering
// Redis delays a process's start by no more than this.
const StartTimeout = 3 * time.Second

// Run reloads the registry every Interval until ctx ends. A failed load is
// logged and retried after RetryInterval (sooner than Interval, so a
// process that started while Redis was down gets its registry soon after
// Redis is back), keeping the previous snapshot meanwhile.
func (l *Loader) Run(ctx context.Context) {
	every := l.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	wait := every
	if l.failed {
		wait = min(every, RetryInterval)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wait = every
		if err := l.Load(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log().ErrorContext(ctx, "column registry load failed", "err", err.Error())
			wait = min(every, RetryInterval)
		}
		t.Reset(wait)
	}
}

// RetryInterval is how soon a Loader tries again after a failed load.
const RetryInterval = time.Second

func (l *Loader) log() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.Default()
}
