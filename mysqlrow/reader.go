package mysqlrow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/go-sql-driver/mysql"
)

// ErrNoRow is returned by Reader.Row when the table has no row with the key.
var ErrNoRow = errors.New("mysqlrow: no such row")

// SchemaMaxAge is how long a table's column list and types are reused before
// information_schema is read again, so a column added by DDL shows up on the
// fallback path within this time (a query naming a dropped column reloads
// at once).
const SchemaMaxAge = time.Minute

// MaxBatch is the most keys Rows puts into one query; larger batches take
// several queries.
const MaxBatch = 1000

// Row is one row read from the database.
type Row struct {
	// Key is the row's Redis key, built from the key columns' values as the
	// database returned them.
	Key string
	// JSON is the canonical row JSON.
	JSON []byte
}

// Reader reads rows as canonical JSON. It is safe for concurrent use.
type Reader struct {
	db  *sql.DB
	cfg *cdc.Config

	mu      sync.Mutex         // guards schemas and flavour
	schemas map[string]*schema // by "db.table"
	flavour string             // "mariadb" or "mysql" once known
}

// NewReader returns a Reader on db, which must have been opened with Open or
// a driver config passed through Configure. cfg gives the key prefix and
// each table's key and column list.
func NewReader(db *sql.DB, cfg *cdc.Config) *Reader {
	return &Reader{db: db, cfg: cfg, schemas: map[string]*schema{}}
}

// Row reads the row of table ("db.table") with the primary-key values pk, in
// key-column order. Key values are integers, strings, []byte (binary keys)
// or json.RawMessage holding a canonical value such as "12.30".
func (r *Reader) Row(ctx context.Context, table string, pk ...any) (Row, error) {
	rows, err := r.query(ctx, table, [][]any{pk}, func(s *schema) string { return s.whereOne() })
	if err != nil {
		return Row{}, err
	}
	if len(rows) == 0 {
		return Row{}, ErrNoRow
	}
	return rows[0], nil
}

// Rows reads the rows of table with the given keys in one query (per
// MaxBatch keys). It returns the rows found, in no particular order; match
// them to the requested keys by Row.Key.
func (r *Reader) Rows(ctx context.Context, table string, pks [][]any) ([]Row, error) {
	var out []Row
	for start := 0; start < len(pks); start += MaxBatch {
		chunk := pks[start:min(start+MaxBatch, len(pks))]
		rows, err := r.query(ctx, table, chunk, func(s *schema) string { return s.whereMany(len(chunk)) })
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// Forget drops the cached schema of table, e.g. after DDL.
func (r *Reader) Forget(table string) {
	r.mu.Lock()
	delete(r.schemas, table)
	r.mu.Unlock()
}

func (r *Reader) query(ctx context.Context, table string, pks [][]any, where func(*schema) string) ([]Row, error) {
	for attempt := 0; ; attempt++ {
		s, err := r.schema(ctx, table)
		if err != nil {
			return nil, err
		}
		args := make([]any, 0, len(pks)*len(s.keyIdx))
		for _, pk := range pks {
			if len(pk) != len(s.keyIdx) {
				return nil, fmt.Errorf("mysqlrow: %s has %d key columns, got %d values", table, len(s.keyIdx), len(pk))
			}
			for _, v := range pk {
				a, err := sqlArg(v)
				if err != nil {
					return nil, fmt.Errorf("mysqlrow: %s: %w", table, err)
				}
				args = append(args, a)
			}
		}
		rows, err := r.run(ctx, s, s.selects+where(s), args)
		var me *mysql.MySQLError
		if attempt == 0 && errors.As(err, &me) && (me.Number == 1054 || me.Number == 1146) {
			// Unknown column or table: the schema changed under the cache.
			r.Forget(table)
			continue
		}
		return rows, err
	}
}

func (r *Reader) run(ctx context.Context, s *schema, query string, args []any) ([]Row, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: %s: %w", s.table, err)
	}
	defer rows.Close()
	vals := make([]any, len(s.cols))
	ptrs := make([]any, len(s.cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Row
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("mysqlrow: %s: %w", s.table, err)
		}
		row, err := s.encode(r.cfg.Prefix, vals)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlrow: %s: %w", s.table, err)
	}
	return out, nil
}

// schema returns the cached schema of table, loading it when missing or
// older than SchemaMaxAge.
func (r *Reader) schema(ctx context.Context, table string) (*schema, error) {
	r.mu.Lock()
	s, flavour := r.schemas[table], r.flavour
	r.mu.Unlock()
	if s != nil && time.Since(s.loaded) < SchemaMaxAge {
		return s, nil
	}
	if flavour == "" {
		var version string
		if err := r.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
			return nil, fmt.Errorf("mysqlrow: server version: %w", err)
		}
		flavour = "mysql"
		if strings.Contains(strings.ToLower(version), "mariadb") {
			flavour = "mariadb"
		}
	}
	s, err := r.loadSchema(ctx, table, flavour == "mariadb")
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.schemas[table], r.flavour = s, flavour
	r.mu.Unlock()
	return s, nil
}

// sqlArg turns a key value as accepted by cdc.KeyPart into a query argument.
func sqlArg(v any) (any, error) {
	switch x := v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, string, []byte:
		return x, nil
	case json.RawMessage:
		if len(x) > 0 && x[0] == '"' {
			var s string
			if err := json.Unmarshal(x, &s); err != nil {
				return nil, fmt.Errorf("key value %s: %w", x, err)
			}
			return s, nil
		}
		if len(x) == 0 || string(x) == "null" {
			return nil, fmt.Errorf("key value %q is empty or null", x)
		}
		return string(x), nil
	}
	return nil, fmt.Errorf("key value %v: type %T is not a supported key type (use an integer, a string, []byte or json.RawMessage)", v, v)
}
