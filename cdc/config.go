package cdc

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mode says what a change does to the cache for one table.
type Mode string

// The modes of the design's apply rules.
const (
	// ModeReplicate caches every row; a snapshot warms the whole table.
	ModeReplicate Mode = "replicate"
	// ModeRefresh updates only rows that already have a record.
	ModeRefresh Mode = "refresh"
	// ModeInvalidate leaves a marker; the read path refills.
	ModeInvalidate Mode = "invalidate"
)

// Fill is the read path's policy on a miss.
type Fill string

// The fill policies of the read path (design section 4).
const (
	// FillNone never writes from the read path.
	FillNone Fill = "none"
	// FillLease fills a missed row under a lease token.
	FillLease Fill = "lease"
)

// DefaultTombstoneTTL keeps tombstones for Pub/Sub's longest retention (7
// days), so a late redelivery cannot resurrect a deleted row.
const DefaultTombstoneTTL = 168 * time.Hour

// Config is the cache configuration shared by the handler and the read path.
type Config struct {
	// Prefix starts every Redis key (the namespace).
	Prefix string `yaml:"prefix"`
	// TombstoneTTL is how long deleted rows and markers are remembered.
	TombstoneTTL time.Duration `yaml:"tombstone_ttl"`
	// OnlyListed ignores changes of tables not in Tables.
	OnlyListed bool `yaml:"only_listed"`
	// DecimalHandlingMode is Debezium's decimal.handling.mode, which says how
	// a DECIMAL typed by types: or the column registry arrives without a
	// schema: precise (default: base64 bytes of the unscaled value), string
	// (decimal text) or double (a number). A JSON number is read as a number
	// in every mode; a string is never guessed between base64 and text.
	DecimalHandlingMode DecimalMode `yaml:"decimal_handling_mode"`
	// ServerName is the Debezium server name (topic.prefix) given to changes
	// whose message names none: the compact profile's flattened rows carry
	// no source.name, and without a name a change moves no checkpoint.
	ServerName string `yaml:"server_name"`
	// Tables maps "db.table" to its settings.
	Tables map[string]*Table `yaml:"tables"`
}

// DecimalMode is a value of Debezium's decimal.handling.mode.
type DecimalMode string

// The decimal.handling.mode values of the Debezium MySQL connector.
const (
	DecimalPrecise DecimalMode = "precise"
	DecimalString  DecimalMode = "string"
	DecimalDouble  DecimalMode = "double"
)

// Table is the configuration of one table.
type Table struct {
	// Key lists the key columns; empty means the Debezium key.
	Key []string `yaml:"key"`
	// Columns, when set, is the list of columns kept in the cached row.
	Columns []string `yaml:"columns"`
	// Exclude lists columns dropped from the cached row.
	Exclude []string `yaml:"exclude"`
	// Types declares column types for events without a schema, e.g.
	// {created: datetime(3), price: decimal(10,2)}.
	Types map[string]string `yaml:"types"`
	// ColumnTypes is Types parsed by Validate.
	ColumnTypes map[string]ColumnType `yaml:"-"`
	// TTL bounds a cached row's life; 0 keeps it until changed.
	TTL time.Duration `yaml:"ttl"`
	// Mode is replicate (default), refresh or invalidate.
	Mode Mode `yaml:"mode"`
	// Fill is the read path's policy on a miss: none (default) or lease.
	Fill Fill `yaml:"fill"`
	// NegativeTTL, when set, caches a row the database does not have as a
	// tombstone for this long on the read path.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// defaultTable is what an unlisted table gets.
var defaultTable = Table{Mode: ModeReplicate, Fill: FillNone}

// DefaultConfig is the configuration without a file: every table cached in
// replicate mode with the Debezium key.
func DefaultConfig() *Config {
	return &Config{TombstoneTTL: DefaultTombstoneTTL, DecimalHandlingMode: DecimalPrecise, Tables: map[string]*Table{}}
}

// LoadConfig reads and validates the YAML file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates a YAML configuration. Unknown fields are
// errors, so a misspelt setting is not silently ignored, and every error
// names the setting's YAML path:
// `config: tables.inventory.customers: unknown field "tll"`.
func ParseConfig(data []byte) (*Config, error) {
	c := DefaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := decodeNode(&root, reflect.ValueOf(c).Elem(), ""); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.Tables == nil {
		c.Tables = map[string]*Table{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var tableName = regexp.MustCompile(`^[^.\s:]+\.[^.\s:]+$`)

// Validate checks the configuration and fills in defaults. Errors name the
// field (and the table) that is wrong.
func (c *Config) Validate() error {
	if c.TombstoneTTL <= 0 {
		return fmt.Errorf("config: tombstone_ttl must be positive, got %v", c.TombstoneTTL)
	}
	switch c.DecimalHandlingMode {
	case "":
		c.DecimalHandlingMode = DecimalPrecise
	case DecimalPrecise, DecimalString, DecimalDouble:
	default:
		return fmt.Errorf("config: decimal_handling_mode: %q is not precise, string or double", c.DecimalHandlingMode)
	}
	if strings.ContainsAny(c.Prefix, " \t\n*?[]") {
		return fmt.Errorf("config: prefix %q must not contain spaces or glob characters", c.Prefix)
	}
	names := make([]string, 0, len(c.Tables))
	for name := range c.Tables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := c.Tables[name]
		if t == nil {
			t = &Table{}
			c.Tables[name] = t
		}
		if err := t.validate(); err != nil {
			return fmt.Errorf("config: tables.%s.%w", name, err)
		}
		if !tableName.MatchString(name) {
			return fmt.Errorf("config: tables.%s: table name must be db.table", name)
		}
	}
	return nil
}

func (t *Table) validate() error {
	switch t.Mode {
	case "":
		t.Mode = ModeReplicate
	case ModeReplicate, ModeRefresh, ModeInvalidate:
	default:
		return fmt.Errorf("mode: %q is not replicate, refresh or invalidate", t.Mode)
	}
	switch t.Fill {
	case "":
		t.Fill = FillNone
	case FillNone, FillLease:
	default:
		return fmt.Errorf("fill: %q is not none or lease", t.Fill)
	}
	if len(t.Columns) > 0 && len(t.Exclude) > 0 {
		return errors.New("exclude: set columns or exclude, not both")
	}
	for field, list := range map[string][]string{"key": t.Key, "columns": t.Columns, "exclude": t.Exclude} {
		seen := map[string]bool{}
		for _, col := range list {
			if col == "" || seen[col] {
				return fmt.Errorf("%s: column %q is empty or repeated", field, col)
			}
			seen[col] = true
		}
	}
	t.ColumnTypes = make(map[string]ColumnType, len(t.Types))
	for col, text := range t.Types {
		ct, err := ParseColumnType(text)
		if err != nil {
			return fmt.Errorf("types.%s: %w", col, err)
		}
		t.ColumnTypes[col] = ct
	}
	if t.TTL < 0 {
		return fmt.Errorf("ttl: must not be negative, got %v", t.TTL)
	}
	if t.NegativeTTL < 0 {
		return fmt.Errorf("negative_ttl: must not be negative, got %v", t.NegativeTTL)
	}
	return nil
}

// Lookup returns the settings of a table and whether it is listed. An
// unlisted table gets the defaults; callers check Config.OnlyListed.
func (c *Config) Lookup(table string) (*Table, bool) {
	if t, ok := c.Tables[table]; ok {
		return t, true
	}
	return &defaultTable, false
}

// Keep reports whether a column belongs in the cached row.
func (t *Table) Keep(col string) bool {
	if len(t.Columns) > 0 {
		for _, c := range t.Columns {
			if c == col {
				return true
			}
		}
		return false
	}
	for _, c := range t.Exclude {
		if c == col {
			return false
		}
	}
	return true
}

// ColumnType is a MySQL column type declared in the config for events
// without a schema: the base name, and length/precision and scale.
type ColumnType struct {
	// Base is the lower-case type name: int, bigint unsigned, decimal, float,
	// double, date, datetime, timestamp, time, bit, json, binary, geometry,
	// string, bool, year.
	Base string
	// Precision is the fractional-second digits of datetime, timestamp and
	// time, the bit count of bit, or the precision of decimal.
	Precision int
	// Scale is the scale of decimal.
	Scale int
}

// typePattern reads a type as written in the config or as information_schema
// COLUMN_TYPE prints it: "decimal(10,2) unsigned zerofill", "bigint(20) unsigned".
var typePattern = regexp.MustCompile(`^([a-z ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?(\s+unsigned)?(\s+zerofill)?$`)

// listPattern reads enum('a','b') and set('x','y'), whose member list is
// irrelevant to the encoding (Debezium and MySQL both send the text).
var listPattern = regexp.MustCompile(`^(enum|set)\s*\(.*\)$`)

var knownTypes = map[string]string{
	"tinyint": "int", "smallint": "int", "mediumint": "int", "int": "int", "integer": "int", "bigint": "int",
	"year": "int", "bool": "bool", "boolean": "bool",
	"decimal": "decimal", "numeric": "decimal", "float": "float", "double": "double", "real": "double",
	"date": "date", "datetime": "datetime", "timestamp": "timestamp", "time": "time",
	"bit": "bit", "json": "json",
	"binary": "binary", "varbinary": "binary", "blob": "binary", "tinyblob": "binary", "mediumblob": "binary", "longblob": "binary",
	"geometry": "geometry", "point": "geometry", "linestring": "geometry", "polygon": "geometry",
	"multipoint": "geometry", "multilinestring": "geometry", "multipolygon": "geometry",
	"geometrycollection": "geometry", "geomcollection": "geometry", "double precision": "double",
	"char": "string", "varchar": "string", "tinytext": "string", "text": "string", "mediumtext": "string",
	"longtext": "string", "enum": "string", "set": "string", "string": "string",
}

// ParseColumnType parses a type such as "datetime(3)", "decimal(10,2)",
// "bigint unsigned" or "bit(8)".
func ParseColumnType(s string) (ColumnType, error) {
	lower := strings.ToLower(strings.TrimSpace(s))
	if listPattern.MatchString(lower) {
		return ColumnType{Base: "string"}, nil
	}
	m := typePattern.FindStringSubmatch(lower)
	if m == nil {
		return ColumnType{}, fmt.Errorf("type %q is not a MySQL column type", s)
	}
	base, ok := knownTypes[m[1]]
	if !ok {
		return ColumnType{}, fmt.Errorf("type %q: unknown type %q", s, m[1])
	}
	ct := ColumnType{Base: base}
	if m[2] != "" {
		ct.Precision, _ = strconv.Atoi(m[2])
	}
	if m[3] != "" {
		ct.Scale, _ = strconv.Atoi(m[3])
	}
	if m[4] != "" && m[1] == "bigint" {
		ct.Base = "bigint unsigned"
	}
	switch {
	case base == "decimal" && ct.Scale > 30:
		return ColumnType{}, fmt.Errorf("type %q: decimal scale above 30", s)
	case (base == "datetime" || base == "timestamp" || base == "time") && ct.Precision > 6:
		return ColumnType{}, fmt.Errorf("type %q: fractional seconds above 6", s)
	case base == "bit" && ct.Precision > 64:
		return ColumnType{}, fmt.Errorf("type %q: bit width above 64", s)
	}
	if base == "bit" && ct.Precision == 0 {
		ct.Precision = 1
	}
	return ct, nil
}
