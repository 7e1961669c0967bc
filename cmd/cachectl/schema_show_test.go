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

// cachectl connects to Redis as the services do: REDIS_CA_CERT is the CA a
// rediss:// server is verified against, and a wrong setting is an error
// naming it rather than a TLS failure (or an unverified connection) later.
func TestRedisCACertIsHonoured(t *testing.T) {
	env := map[string]string{"REDIS_CA_CERT": t.TempDir() + "/missing.pem"}
	_, _, err := runCmd(t, env, "schema", "show", "-redis", "rediss://127.0.0.1:6379/0", "-prefix", "x:")
	assert.ErrorContains(t, err, "REDIS_CA_CERT")
	_, _, err = runCmd(t, env, "status", "-redis", "redis://127.0.0.1:6379/0", "-prefix", "x:")
	assert.ErrorContains(t, err, "REDIS_CA_CERT: set, but REDIS_URL")
}
