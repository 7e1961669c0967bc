package cdc

import (
	"encoding/json"
	"errors"
	"fmt"
)

// RegistryKey is the Redis hash of the column registry: field "db.table",
// value a TableSchema as JSON.
func RegistryKey(prefix string) string { return prefix + "__cdc:schema" }

// TableSchema is one table's entry in the column registry: what a message
// without a schema cannot say. Written by `cachectl schema sync` from
// information_schema, read by every process that decodes changes.
type TableSchema struct {
	// Key is the primary key's columns in key order.
	Key []string `json:"key"`
	// Columns are all the table's columns in table order.
	Columns []SchemaColumn `json:"columns"`
	// ReadAtMs is when information_schema was read, Unix ms.
	ReadAtMs int64 `json:"read_at_ms"`

	types map[string]ColumnType // the parsed Columns; a type that does not parse is absent
}

// SchemaColumn is one column of a TableSchema.
type SchemaColumn struct {
	// Name is the column name.
	Name string `json:"name"`
	// Type is information_schema's COLUMN_TYPE ("bigint(20) unsigned",
	// "datetime(3)"), except that a MariaDB JSON column (longtext with a
	// json_valid check) is "json".
	Type string `json:"type"`
}

// ParseTableSchema decodes and checks one registry entry.
func ParseTableSchema(data []byte) (*TableSchema, error) {
	var ts TableSchema
	if err := json.Unmarshal(data, &ts); err != nil {
		return nil, fmt.Errorf("registry entry: %w", err)
	}
	if err := ts.compile(); err != nil {
		return nil, err
	}
	return &ts, nil
}

// compile checks the entry and parses its types. A type that does not
// parse leaves its column untyped (the fail-safe path) rather than failing
// the table: MySQL may grow types this code does not know.
func (ts *TableSchema) compile() error {
	if len(ts.Columns) == 0 {
		return errors.New("registry entry: no columns")
	}
	ts.types = make(map[string]ColumnType, len(ts.Columns))
	seen := make(map[string]bool, len(ts.Columns))
	for _, c := range ts.Columns {
		if c.Name == "" {
			return errors.New("registry entry: a column has no name")
		}
		if seen[c.Name] {
			return fmt.Errorf("registry entry: column %q is repeated", c.Name)
		}
		seen[c.Name] = true
		if ct, err := ParseColumnType(c.Type); err == nil {
			ts.types[c.Name] = ct
		}
	}
	for _, k := range ts.Key {
		if !ts.Has(k) {
			return fmt.Errorf("registry entry: key column %q is not a column", k)
		}
	}
	return nil
}

// Has reports whether col is a column of the entry.
func (ts *TableSchema) Has(col string) bool {
	for _, c := range ts.Columns {
		if c.Name == col {
			return true
		}
	}
	return false
}

// Type returns the parsed type of col; false when the column is unknown to
// the entry or its type is one this code cannot decode.
func (ts *TableSchema) Type(col string) (ColumnType, bool) {
	ct, ok := ts.types[col]
	return ct, ok
}

// NewTableSchema builds an entry from its parts, checked as a read one is.
func NewTableSchema(key []string, cols []SchemaColumn, readAtMs int64) (*TableSchema, error) {
	ts := &TableSchema{Key: key, Columns: cols, ReadAtMs: readAtMs}
	if err := ts.compile(); err != nil {
		return nil, err
	}
	return ts, nil
}

// Registry is one snapshot of the column registry, by "db.table". It is
// never modified once built; loaders swap whole snapshots.
type Registry struct {
	// Tables maps "db.table" to its entry.
	Tables map[string]*TableSchema
}

// Lookup returns a table's entry, or nil (also on a nil Registry).
func (r *Registry) Lookup(table string) *TableSchema {
	if r == nil {
		return nil
	}
	return r.Tables[table]
}
