package cdc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
prefix: "app1:"
tombstone_ttl: 200h
only_listed: true
tables:
  inventory.customers:
    key: [id]
    columns: [id, email]
    ttl: 24h
    mode: refresh
    fill: lease
    negative_ttl: 1m
    types: {created: datetime(3), price: "decimal(10,2)"}
  inventory.orders:
`))
	require.NoError(t, err)
	assert.Equal(t, "app1:", c.Prefix)
	assert.Equal(t, 200*time.Hour, c.TombstoneTTL)
	assert.True(t, c.OnlyListed)

	cu, ok := c.Lookup("inventory.customers")
	require.True(t, ok)
	assert.Equal(t, []string{"id"}, cu.Key)
	assert.Equal(t, ModeRefresh, cu.Mode)
	assert.Equal(t, FillLease, cu.Fill)
	assert.Equal(t, 24*time.Hour, cu.TTL)
	assert.Equal(t, time.Minute, cu.NegativeTTL)
	assert.Equal(t, map[string]ColumnType{
		"created": {Base: "datetime", Precision: 3},
		"price":   {Base: "decimal", Precision: 10, Scale: 2},
	}, cu.ColumnTypes)
	assert.True(t, cu.Keep("email"))
	assert.False(t, cu.Keep("name"))

	or, ok := c.Lookup("inventory.orders")
	require.True(t, ok, "a table listed with no settings is listed")
	assert.Equal(t, ModeReplicate, or.Mode)
	assert.Equal(t, FillNone, or.Fill)
	assert.True(t, or.Keep("anything"))

	other, ok := c.Lookup("inventory.products")
	assert.False(t, ok)
	assert.Equal(t, ModeReplicate, other.Mode)
}

func TestDefaultConfig(t *testing.T) {
	for _, c := range []*Config{DefaultConfig(), mustParse(t, "")} {
		assert.Equal(t, "", c.Prefix)
		assert.Equal(t, DefaultTombstoneTTL, c.TombstoneTTL)
		assert.False(t, c.OnlyListed)
		tb, listed := c.Lookup("any.table")
		assert.False(t, listed)
		assert.Empty(t, tb.Key)
		assert.True(t, tb.Keep("x"))
	}
}

func mustParse(t *testing.T, s string) *Config {
	c, err := ParseConfig([]byte(s))
	require.NoError(t, err)
	return c
}

func TestKeepExclude(t *testing.T) {
	c := mustParse(t, "tables:\n  a.b:\n    exclude: [secret]\n")
	tb, _ := c.Lookup("a.b")
	assert.False(t, tb.Keep("secret"))
	assert.True(t, tb.Keep("id"))
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for yaml, want := range map[string]string{
		"tables:\n  inventory.customers:\n    mode: x\n":        `config: tables.inventory.customers.mode: "x" is not replicate, refresh or invalidate`,
		"tables:\n  inventory.customers:\n    fill: always\n":   `config: tables.inventory.customers.fill: "always" is not none or lease`,
		"tables:\n  a.b:\n    columns: [x]\n    exclude: [y]\n": "config: tables.a.b.exclude: set columns or exclude, not both",
		"tables:\n  a.b:\n    key: [id, id]\n":                  `config: tables.a.b.key: column "id" is empty or repeated`,
		"tables:\n  a.b:\n    types: {price: money}\n":          `config: tables.a.b.types.price: type "money"`,
		"tables:\n  a.b:\n    ttl: -1h\n":                       "config: tables.a.b.ttl: must not be negative",
		"tables:\n  a.b:\n    negative_ttl: -1s\n":              "config: tables.a.b.negative_ttl: must not be negative",
		"tables:\n  nodot:\n    mode: replicate\n":              "config: tables.nodot: table name must be db.table",
		"tombstone_ttl: 0s\n":                                   "config: tombstone_ttl must be positive",
		"prefix: \"a b\"\n":                                     `config: prefix "a b" must not contain spaces or glob characters`,
		"tables:\n  a.b:\n    colums: [x]\n":                    `config: tables.a.b: unknown field "colums"`,
		"only_listed: maybe\n":                                  "config:",
	} {
		_, err := ParseConfig([]byte(yaml))
		require.Error(t, err, yaml)
		assert.Contains(t, err.Error(), want, yaml)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cache.yaml")
	require.NoError(t, os.WriteFile(path, []byte("prefix: p1\n"), 0o600))
	c, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "p1", c.Prefix)

	require.NoError(t, os.WriteFile(path, []byte("tables:\n  a.b:\n    mode: x\n"), 0o600))
	_, err = LoadConfig(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "tables.a.b.mode")

	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	assert.ErrorContains(t, err, "config:")
}

func TestParseColumnType(t *testing.T) {
	for in, want := range map[string]ColumnType{
		"int":                 {Base: "int"},
		"BIGINT":              {Base: "int"},
		"bigint unsigned":     {Base: "bigint unsigned"},
		"bigint(20) unsigned": {Base: "bigint unsigned", Precision: 20},
		"int unsigned":        {Base: "int"},
		"tinyint(1)":          {Base: "int", Precision: 1},
		"bool":                {Base: "bool"},
		"year":                {Base: "int"},
		"decimal(10,2)":       {Base: "decimal", Precision: 10, Scale: 2},
		" numeric( 8 , 3 ) ":  {Base: "decimal", Precision: 8, Scale: 3},
		"float":               {Base: "float"},
		"double":              {Base: "double"},
		"real":                {Base: "double"},
		"date":                {Base: "date"},
		"datetime(6)":         {Base: "datetime", Precision: 6},
		"timestamp":           {Base: "timestamp"},
		"time(3)":             {Base: "time", Precision: 3},
		"bit":                 {Base: "bit", Precision: 1},
		"bit(16)":             {Base: "bit", Precision: 16},
		"json":                {Base: "json"},
		"varbinary(255)":      {Base: "binary", Precision: 255},
		"longblob":            {Base: "binary"},
		"point":               {Base: "geometry"},
		"varchar(100)":        {Base: "string", Precision: 100},
		"enum":                {Base: "string"},
		// information_schema COLUMN_TYPE forms (the column registry)
		"enum('a','b,c')":              {Base: "string"},
		"set('x','y')":                 {Base: "string"},
		"int(10) unsigned zerofill":    {Base: "int", Precision: 10},
		"bigint(20) unsigned zerofill": {Base: "bigint unsigned", Precision: 20},
		"decimal(10,2) unsigned":       {Base: "decimal", Precision: 10, Scale: 2},
		"float(10,2)":                  {Base: "float", Precision: 10, Scale: 2},
		"double precision":             {Base: "double"},
		"longtext":                     {Base: "string"},
		"multipolygon":                 {Base: "geometry"},
		"geomcollection":               {Base: "geometry"},
	} {
		got, err := ParseColumnType(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"money":          "unknown type",
		"decimal(40,31)": "decimal scale above 30",
		"datetime(7)":    "fractional seconds above 6",
		"bit(65)":        "bit width above 64",
		"int(":           "is not a MySQL column type",
		"":               "is not a MySQL column type",
	} {
		_, err := ParseColumnType(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestTableSchema(t *testing.T) {
	ts, err := ParseTableSchema([]byte(`{"key":["id"],"columns":[{"name":"id","type":"bigint(20) unsigned"},` +
		`{"name":"at","type":"datetime(3)"},{"name":"v","type":"vector(3)"}],"read_at_ms":5}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"id"}, ts.Key)
	ct, ok := ts.Type("at")
	assert.True(t, ok)
	assert.Equal(t, ColumnType{Base: "datetime", Precision: 3}, ct)
	_, ok = ts.Type("v")
	assert.False(t, ok, "a type this code cannot decode leaves the column untyped")
	assert.True(t, ts.Has("v"))
	_, ok = ts.Type("nope")
	assert.False(t, ok)
	for in, want := range map[string]string{
		`{"key":["x"],"columns":[{"name":"id","type":"int"}]}`:                "key column",
		`{"key":[],"columns":[]}`:                                             "no columns",
		`{"columns":[{"name":"id","type":"int"},{"name":"id","type":"int"}]}`: "repeated",
		`{"columns":[{"name":"","type":"int"}]}`:                              "no name",
		`[1]`:                                                                 "registry entry",
	} {
		_, err := ParseTableSchema([]byte(in))
		assert.ErrorContains(t, err, want, in)
	}
	var r *Registry
	assert.Nil(t, r.Lookup("a.b"))
	assert.Equal(t, "p:__cdc:schema", RegistryKey("p:"))
}

// FuzzParseTableSchema: a registry entry comes from Redis, so anything
// may arrive; parsing must not panic, and an accepted entry must answer
// for every column it lists and keep its key among its columns.
func FuzzParseTableSchema(f *testing.F) {
	f.Add([]byte(`{"key":["id"],"columns":[{"name":"id","type":"bigint(20) unsigned"},{"name":"at","type":"datetime(3)"}],"read_at_ms":5}`))
	f.Add([]byte(`{"key":[],"columns":[{"name":"e","type":"enum('a','b')"},{"name":"v","type":"vector(3)"},{"name":"z","type":"int(5) unsigned zerofill"}]}`))
	f.Add([]byte(`{"columns":[{"name":"f","type":"float(10,2)"},{"name":"j","type":"json"},{"name":"d","type":"decimal(65,30)"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ParseTableSchema(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, k := range ts.Key {
			if !ts.Has(k) {
				t.Fatalf("key column %q is not a column", k)
			}
		}
		for _, c := range ts.Columns {
			ct, ok := ts.Type(c.Name)
			if _, err := ParseColumnType(c.Type); (err == nil) != ok {
				t.Fatalf("column %q type %q: typed %v, parse error %v", c.Name, c.Type, ok, err)
			}
			if ok && ct.Base == "" {
				t.Fatalf("column %q: empty base", c.Name)
			}
		}
	})
}
