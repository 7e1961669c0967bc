package debezium_test

import (
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func registryOf(t testing.TB, table string, key []string, cols ...string) *cdc.Registry {
	t.Helper()
	var sc []cdc.SchemaColumn
	for i := 0; i+1 < len(cols); i += 2 {
		sc = append(sc, cdc.SchemaColumn{Name: cols[i], Type: cols[i+1]})
	}
	ts, err := cdc.NewTableSchema(key, sc, 1)
	require.NoError(t, err)
	return &cdc.Registry{Tables: map[string]*cdc.TableSchema{table: ts}}
}

// The registry types and keys a compact row: no schema, no Debezium key.
func TestRegistryTypesAndKeysCompactRows(t *testing.T) {
	d := debezium.NewDecoder(nil)
	row := `{"id":"AP//////////","at":1714568645120,"price":"BM4=","fl":10.220000267028809,` + flatMeta("c", "false") + `}`
	_, err := d.Decode([]byte(row), nil)
	assert.ErrorContains(t, err, "no key", "without a registry there is no key")

	d.SetRegistry(registryOf(t, "shop.t", []string{"id"},
		"id", "bigint(20) unsigned", "at", "datetime(3)", "price", "decimal(10,2)", "fl", "float(10,2)"))
	ch, err := d.Decode([]byte(row), nil)
	require.NoError(t, err)
	assert.Equal(t, "shop.t:18446744073709551615", ch.Key)
	assert.Equal(t, `{"id":18446744073709551615,"at":"2024-05-01T13:04:05.12","price":"12.30","fl":10.22}`, string(ch.Row))
	assert.False(t, ch.Untyped)

	// Precedence: the config's key and types win over the registry's.
	cfg := mustConfig(t, "tables:\n  shop.t:\n    key: [at]\n    types:\n      at: datetime(6)\n")
	d2 := debezium.NewDecoder(cfg)
	d2.SetRegistry(d.Registry())
	ch, err = d2.Decode([]byte(row), nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":18446744073709551615,"at":"1970-01-20T20:16:08.64512","price":"12.30","fl":10.22}`, string(ch.Row))
	assert.Equal(t, "shop.t:1970-01-20T20%3A16%3A08.64512", ch.Key)

	// BIGINT UNSIGNED in long mode: the wrapped long is unwrapped.
	ch, err = d.Decode([]byte(`{"id":-1,"at":null,"price":null,"fl":null,`+flatMeta("u", "false")+`}`), nil)
	require.NoError(t, err)
	assert.Equal(t, "shop.t:18446744073709551615", ch.Key)
}

// A column the registry does not know (added since the last sync) makes
// the row untyped: no row, a marker, whatever the other columns hold.
// Deletes need no types and stay deletes.
func TestUntypedColumnFailsSafe(t *testing.T) {
	d := debezium.NewDecoder(nil)
	d.SetRegistry(registryOf(t, "shop.t", []string{"id"}, "id", "int", "v", "vector(3)"))
	for _, row := range []string{
		`{"id":1,"added":1714568645120,` + flatMeta("c", "false") + `}`,
		`{"id":1,"v":"AAAA",` + flatMeta("u", "false") + `}`, // a type this code cannot decode
	} {
		ch, err := d.Decode([]byte(row), nil)
		require.NoError(t, err)
		assert.True(t, ch.Untyped, row)
		assert.Nil(t, ch.Row, row)
		assert.Equal(t, "shop.t:1", ch.Key)
	}
	ch, err := d.Decode([]byte(`{"id":1,"added":5,`+flatMeta("d", "true")+`}`), nil)
	require.NoError(t, err)
	assert.Equal(t, cdc.OpDelete, ch.Op)
	assert.False(t, ch.Untyped)

	// A column typed by the config is typed, even if the registry lags.
	d2 := debezium.NewDecoder(mustConfig(t, "tables:\n  shop.t:\n    types:\n      added: datetime(3)\n"))
	d2.SetRegistry(d.Registry())
	ch, err = d2.Decode([]byte(`{"id":1,"added":1714568645120,`+flatMeta("c", "false")+`}`), nil)
	require.NoError(t, err)
	assert.False(t, ch.Untyped)
	assert.Equal(t, `{"id":1,"added":"2024-05-01T13:04:05.12"}`, string(ch.Row))

	// A table the registry has no entry for passes through as written.
	ch, err = d.Decode([]byte(`{"id":1,"added":5,"__op":"c","__source_file":"f.000001","__source_pos":4,"__db":"shop","__table":"other"}`), []byte(`{"id":1}`))
	require.NoError(t, err)
	assert.False(t, ch.Untyped)
	assert.Equal(t, `{"id":1,"added":5}`, string(ch.Row))
}
