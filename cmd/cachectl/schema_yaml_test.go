package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// The yaml output is a valid cache config whose key: and types: say what
// the registry says.
func TestSchemaYAMLGolden(t *testing.T) {
	const prefix = "cachectl-test-schema-yaml:"
	rdb := sharedRedis(t, prefix)
	orders, customers, stable := schemaTables(t)
	_, errOut, err := runCmd(t, schemaEnv, "schema", "sync", "-mysql", testMySQL, "-tables", orders+","+customers,
		"-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	require.NoError(t, rdb.HSet(context.Background(), prefix+"__cdc:schema",
		"shop.odd", `{"key":["a: b"],"columns":[{"name":"a: b","type":"int"},{"name":"v","type":"vector(3)"}],"read_at_ms":1}`).Err())

	out, errOut, err := runCmd(t, schemaEnv, "schema", "yaml", "-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	golden(t, "schema", "yaml", stable(out))

	cfg, err := cdc.ParseConfig([]byte(out))
	require.NoError(t, err, out)
	tc, ok := cfg.Lookup(orders)
	require.True(t, ok)
	assert.Equal(t, []string{"shop", "id"}, tc.Key)
	assert.Equal(t, cdc.ColumnType{Base: "bigint unsigned", Precision: 20}, tc.ColumnTypes["id"])
	assert.Equal(t, cdc.ColumnType{Base: "json"}, tc.ColumnTypes["note"])
	odd, _ := cfg.Lookup("shop.odd")
	assert.Equal(t, []string{"a: b"}, odd.Key)
	assert.NotContains(t, odd.ColumnTypes, "v")
}
