package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// ensureTable creates and loads the table unless it already holds exactly
// s.rows rows.
func ensureTable(ctx context.Context, db *sql.DB, s settings, stderr io.Writer) error {
	schema, name, ok := strings.Cut(s.table, ".")
	if !ok {
		return fmt.Errorf("-table %q is not db.table", s.table)
	}
	qualified := "`" + schema + "`.`" + name + "`"
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qualified).Scan(&n)
	if err == nil && n == s.rows {
		fmt.Fprintf(stderr, "table %s: reusing %d rows\n", s.table, n)
		return nil
	}
	start := time.Now()
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + qualified,
		"CREATE TABLE " + qualified + ` (
			id INT PRIMARY KEY, sku VARCHAR(32) NOT NULL, name VARCHAR(80) NOT NULL,
			price DECIMAL(10,2) NOT NULL, qty INT NOT NULL, active BOOL NOT NULL,
			updated DATETIME(3) NOT NULL, note TEXT)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	const perInsert = 2000
	var b strings.Builder
	for first := 1; first <= s.rows; first += perInsert {
		b.Reset()
		b.WriteString("INSERT INTO " + qualified + " VALUES ")
		for id := first; id < first+perInsert && id <= s.rows; id++ {
			if id > first {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'SKU-%08d','Product number %d, a fine thing',%d.%02d,%d,%d,'2024-05-01 12:00:00.%03d','note for row %d')",
				id, id, id, id%10000, id%100, id%500, id%2, id%1000, id)
		}
		if _, err := db.ExecContext(ctx, b.String()); err != nil {
			return fmt.Errorf("load %s: %w", s.table, err)
		}
	}
	fmt.Fprintf(stderr, "table %s: loaded %d rows in %v\n", s.table, s.rows, time.Since(start).Round(time.Millisecond))
	return nil
}

// warm writes every row as the change stream's snapshot would: a row record
// at the snapshot's version, read through mysqlrow so the row is the
// canonical JSON.
func warm(ctx context.Context, db *sql.DB, c benchCache, cfg *cdc.Config, s settings, stderr io.Writer) error {
	if err := c.clear(ctx); err != nil {
		return err
	}
	start := time.Now()
	rows := mysqlrow.NewReader(db, cfg)
	version := cdc.NewVersion(1, 4, 0)
	const batch = 1000
	for first := 1; first <= s.rows; first += batch {
		pks := make([][]any, 0, batch)
		for id := first; id < first+batch && id <= s.rows; id++ {
			pks = append(pks, []any{id})
		}
		got, err := rows.Rows(ctx, s.table, pks)
		if err != nil {
			return err
		}
		if err := c.write(ctx, got, version); err != nil {
			return fmt.Errorf("warm: %w", err)
		}
	}
	fmt.Fprintf(stderr, "warm: %d records in %v\n", s.rows, time.Since(start).Round(time.Millisecond))
	return nil
}

// deletePrefix removes the benchmark's keys (its prefix has no glob
// characters, checked by parse).
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 2000).Result()
		if err != nil {
			return fmt.Errorf("scan %s*: %w", prefix, err)
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("unlink: %w", err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
