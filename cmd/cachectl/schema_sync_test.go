package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

const testMySQL = "root@tcp(127.0.0.1:3306)/test"

var schemaEnv = map[string]string{"CACHECTL_NOW": "2024-05-01T13:05:00Z"}

// schemaTables creates two MariaDB tables with random names (dropped at the
// end) and returns their names and a function that writes them as
// test.orders and test.customers, so outputs can be compared with goldens.
func schemaTables(t *testing.T) (orders, customers string, stable func(string) string) {
	t.Helper()
	db, err := mysqlrow.Open(testMySQL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(context.Background()), "MariaDB must run on 127.0.0.1:3306 (make services)")
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	orders, customers = "cachectl_orders_"+suffix, "cachectl_customers_"+suffix
	for _, q := range []string{
		"CREATE TABLE " + orders + " (shop INT NOT NULL, id BIGINT UNSIGNED NOT NULL, total DECIMAL(10,2), " +
			"placed DATETIME(3), note JSON, status ENUM('new','paid'), PRIMARY KEY (shop, id))",
		"CREATE TABLE " + customers + " (id INT PRIMARY KEY, email VARCHAR(255))",
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP TABLE IF EXISTS " + orders)
		_, _ = db.Exec("DROP TABLE IF EXISTS " + customers)
	})
	stable = func(s string) string {
		return strings.NewReplacer(orders, "test.orders", customers, "test.customers").Replace(s)
	}
	return "test." + orders, "test." + customers, stable
}

func TestSchemaSyncGolden(t *testing.T) {
	const prefix = "cachectl-test-schema-sync:"
	rdb := sharedRedis(t, prefix)
	orders, customers, stable := schemaTables(t)
	out, errOut, err := runCmd(t, schemaEnv, "schema", "sync", "-mysql", testMySQL, "-tables", orders+","+customers,
		"-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	golden(t, "schema", "sync", stable(out))

	raw, err := rdb.HGet(context.Background(), prefix+"__cdc:schema", orders).Result()
	require.NoError(t, err)
	assert.Equal(t, `{"key":["shop","id"],"columns":[{"name":"shop","type":"int(11)"},{"name":"id","type":"bigint(20) unsigned"},`+
		`{"name":"total","type":"decimal(10,2)"},{"name":"placed","type":"datetime(3)"},{"name":"note","type":"json"},`+
		`{"name":"status","type":"enum('new','paid')"}],"read_at_ms":1714568700000}`, raw)
}

func TestSchemaSyncErrors(t *testing.T) {
	for args, want := range map[string][]string{
		"-mysql and -tables are required": {"schema", "sync", "-tables", "a.b"},
		"not found":                       {"schema", "sync", "-mysql", testMySQL, "-tables", "test.cachectl_no_such_table", "-redis", testRedisURL},
		"unknown subcommand":              {"schema", "drop"},
		"unexpected arguments":            {"schema", "sync", "extra"},
	} {
		_, _, err := runCmd(t, schemaEnv, want...)
		assert.ErrorContains(t, err, args)
	}
	_, errOut, err := runCmd(t, nil, "schema")
	assert.ErrorIs(t, err, errUsage)
	assert.Contains(t, errOut, "sync")
}
