package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemaShowGolden(t *testing.T) {
	const prefix = "cachectl-test-schema-show:"
	rdb := sharedRedis(t, prefix)
	orders, customers, stable := schemaTables(t)
	_, errOut, err := runCmd(t, map[string]string{"CACHECTL_NOW": "2024-05-01T13:00:00Z"}, "schema", "sync", "-mysql", testMySQL,
		"-tables", orders+","+customers, "-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	ctx := context.Background()
	require.NoError(t, rdb.HSet(ctx, prefix+"__cdc:schema",
		"shop.vectors", `{"key":["id"],"columns":[{"name":"id","type":"int"},{"name":"v","type":"vector(3)"}],"read_at_ms":1714568400000}`,
		"shop.broken", `{"key":["x"]`).Err())

	out, errOut, err := runCmd(t, schemaEnv, "schema", "show", "-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	golden(t, "schema", "show", stable(out))

	out, errOut, err = runCmd(t, schemaEnv, "schema", "show", "-redis", testRedisURL, "-prefix", prefix, "-tables", customers)
	require.NoError(t, err, errOut)
	golden(t, "schema", "show-one", stable(out))

	_, _, err = runCmd(t, schemaEnv, "schema", "show", "-redis", testRedisURL, "-prefix", prefix, "-tables", "shop.none")
	assert.ErrorContains(t, err, "not in the registry")
}

func TestSchemaShowEmpty(t *testing.T) {
	const prefix = "cachectl-test-schema-empty:"
	sharedRedis(t, prefix)
	out, errOut, err := runCmd(t, schemaEnv, "schema", "show", "-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	golden(t, "schema", "show-empty", out)
}
