package mysqlrow

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// column is one selected column of a table.
type column struct {
	name     string
	kind     kind
	scale    int  // DECIMAL scale
	nullable bool // zero dates become null only in nullable columns
	keep     bool // part of the row JSON (a key column may be selected only for the key)
}

// schema is what a table's rows are read with; immutable once built.
type schema struct {
	table   string   // "db.table"
	cols    []column // selected columns, in table column order
	keyIdx  []int    // indexes into cols, in key order
	selects string   // "SELECT ... FROM `db`.`table` WHERE "
	loaded  time.Time
}

// jsonCheck matches MariaDB's check clause on a JSON column: json_valid(`c`).
var jsonCheck = regexp.MustCompile("(?i)^\\s*json_valid\\(\\s*`?([^`)]+)`?\\s*\\)\\s*$")

// loadSchema reads a table's column types and key from information_schema.
func (r *Reader) loadSchema(ctx context.Context, table string, mariadb bool) (*schema, error) {
	db, name, ok := strings.Cut(table, ".")
	if !ok || db == "" || name == "" || strings.Contains(name, ".") {
		return nil, fmt.Errorf("mysqlrow: table %q is not db.table", table)
	}
	tcfg, _ := r.cfg.Lookup(table)

	type info struct {
		name, dataType, colType string
		scale                   sql.NullInt64
		nullable                string
	}
	var infos []info
	rows, err := r.db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_SCALE, IS_NULLABLE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: columns of %s: %w", table, err)
	}
	for rows.Next() {
		var i info
		if err := rows.Scan(&i.name, &i.dataType, &i.colType, &i.scale, &i.nullable); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mysqlrow: columns of %s: %w", table, err)
		}
		infos = append(infos, i)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("mysqlrow: columns of %s: %w", table, err)
	}
	if len(infos) == 0 {
		return nil, fmt.Errorf("mysqlrow: table %s not found", table)
	}

	keys := tcfg.Key
	if len(keys) == 0 {
		keys, err = r.strings(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, name)
		if err != nil {
			return nil, fmt.Errorf("mysqlrow: primary key of %s: %w", table, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("mysqlrow: table %s has no primary key and the config names no key", table)
		}
	}

	// MariaDB stores JSON as longtext guarded by json_valid(col); MySQL has
	// a json type, and a longtext there is text, as Debezium also sees it.
	jsonCols := map[string]bool{}
	if mariadb {
		clauses, err := r.strings(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, db, name)
		if err != nil {
			return nil, fmt.Errorf("mysqlrow: check constraints of %s: %w", table, err)
		}
		for _, c := range clauses {
			if m := jsonCheck.FindStringSubmatch(c); m != nil {
				jsonCols[m[1]] = true
			}
		}
	}

	isKey := map[string]int{}
	for i, k := range keys {
		isKey[k] = i
	}
	s := &schema{table: table, keyIdx: make([]int, len(keys)), loaded: time.Now()}
	for i := range s.keyIdx {
		s.keyIdx[i] = -1
	}
	var list strings.Builder
	for _, in := range infos {
		ki, key := isKey[in.name]
		keep := tcfg.Keep(in.name)
		if !keep && !key {
			continue
		}
		k, known := kinds[strings.ToLower(in.dataType)]
		if !known {
			return nil, fmt.Errorf("mysqlrow: %s.%s: type %s is not supported", table, in.name, in.colType)
		}
		switch {
		case k == kindInt && strings.Contains(strings.ToLower(in.colType), "unsigned"):
			k = kindUint
		case k == kindString && strings.EqualFold(in.dataType, "longtext") && jsonCols[in.name]:
			k = kindJSON
		}
		c := column{name: in.name, kind: k, scale: int(in.scale.Int64), nullable: in.nullable == "YES", keep: keep}
		if key {
			s.keyIdx[ki] = len(s.cols)
		}
		s.cols = append(s.cols, c)
		if list.Len() > 0 {
			list.WriteString(", ")
		}
		if k == kindFloat32 {
			// The text protocol prints FLOAT with 6 digits; as a DOUBLE
			// expression the exact single-precision value survives.
			list.WriteString("(" + quoteIdent(in.name) + " + 0e0)")
		} else {
			list.WriteString(quoteIdent(in.name))
		}
	}
	for i, ki := range s.keyIdx {
		if ki < 0 {
			return nil, fmt.Errorf("mysqlrow: key column %q is not a column of %s", keys[i], table)
		}
	}
	s.selects = "SELECT " + list.String() + " FROM " + quoteIdent(db) + "." + quoteIdent(name) + " WHERE "
	return s, nil
}

func (r *Reader) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// whereOne is the condition for one key: `k1` = ? AND `k2` = ?.
func (s *schema) whereOne() string {
	var b strings.Builder
	for i, ki := range s.keyIdx {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(quoteIdent(s.cols[ki].name) + " = ?")
	}
	return b.String()
}

// whereMany is the condition for n keys: `k` IN (?,...) or
// (`k1`,`k2`) IN ((?,?),...).
func (s *schema) whereMany(n int) string {
	var b strings.Builder
	tuple := "?"
	if len(s.keyIdx) > 1 {
		b.WriteString("(")
		for i, ki := range s.keyIdx {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(quoteIdent(s.cols[ki].name))
		}
		b.WriteString(")")
		tuple = "(" + strings.TrimSuffix(strings.Repeat("?,", len(s.keyIdx)), ",") + ")"
	} else {
		b.WriteString(quoteIdent(s.cols[s.keyIdx[0]].name))
	}
	b.WriteString(" IN (")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(tuple)
	}
	b.WriteString(")")
	return b.String()
}

// encode builds a Row (Redis key and canonical JSON) from scanned values.
func (s *schema) encode(prefix string, vals []any) (Row, error) {
	buf := make([]byte, 0, 256)
	buf = append(buf, '{')
	parts := make([][]byte, len(s.keyIdx))
	first := true
	for i := range s.cols {
		c := &s.cols[i]
		if c.keep {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = cdc.AppendString(buf, c.name)
			buf = append(buf, ':')
		}
		start := len(buf)
		var err error
		buf, err = appendValue(buf, c, vals[i])
		if err != nil {
			return Row{}, fmt.Errorf("mysqlrow: %s.%s: %w", s.table, c.name, err)
		}
		for j, ki := range s.keyIdx {
			if ki == i {
				parts[j] = append([]byte(nil), buf[start:]...)
			}
		}
		if !c.keep {
			buf = buf[:start] // a key-only column: encoded for the key, not in the row
		}
	}
	buf = append(buf, '}')
	key, err := cdc.AppendKey(nil, prefix, s.table, parts...)
	if err != nil {
		return Row{}, fmt.Errorf("mysqlrow: %w", err)
	}
	return Row{Key: string(key), JSON: buf}, nil
}
