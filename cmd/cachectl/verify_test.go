package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

func TestVerifyGolden(t *testing.T) {
	const prefix = "cachectl-test-verify:"
	rdb := sharedRedis(t, prefix)
	ctx := context.Background()
	gen := changegen.New(changegen.Options{Seed: 5, Keys: 6})
	for range 60 {
		gen.Next(4)
	}
	path := filepath.Join(t.TempDir(), "expected.jsonl")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, gen.WriteExpected(f))
	require.NoError(t, f.Close())
	exp := gen.Expected()
	var rows, deleted []changegen.Expect
	for _, e := range exp {
		if e.Deleted {
			require.NoError(t, rdb.HSet(ctx, prefix+e.Key, "v", string(e.Version), "t", "1").Err())
			deleted = append(deleted, e)
		} else {
			require.NoError(t, rdb.HSet(ctx, prefix+e.Key, "v", string(e.Version), "d", string(e.Row)).Err())
			rows = append(rows, e)
		}
	}
	require.GreaterOrEqual(t, len(rows), 3)
	require.NotEmpty(t, deleted)
	args := []string{"verify", "-redis", testRedisURL, "-prefix", prefix, "-expected", path}

	out, errOut, err := runCmd(t, nil, args...)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "missing=0 stale=0 resurrected=0")

	// Break four keys, one of each kind (a row at an older version is stale too).
	require.NoError(t, rdb.Del(ctx, prefix+rows[0].Key).Err())
	require.NoError(t, rdb.HSet(ctx, prefix+rows[1].Key, "d", `{"id":0}`).Err())
	require.NoError(t, rdb.HSet(ctx, prefix+rows[2].Key, "v", "0000000001").Err())
	require.NoError(t, rdb.HSet(ctx, prefix+deleted[0].Key, "d", `{"back":"again"}`).Err())
	out, _, err = runCmd(t, nil, args...)
	require.ErrorIs(t, err, errMismatch)
	golden(t, "verify", "mismatch", out[:len(out)-len(path)-2]+"<expected>)\n")

	_, _, err = runCmd(t, nil, "verify", "-redis", testRedisURL)
	assert.ErrorContains(t, err, "no local run found", "no source and no local run")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, nil, append(args, "-mysql", "root@tcp(127.0.0.1:3306)/test")...)
	assert.ErrorContains(t, err, "give -expected or -mysql (with -tables), not both")
	assert.Equal(t, 2, exitCode(err))
}

// TestVerifyMissingTable names a table the database does not have: verify
// says so, instead of "has no primary key".
func TestVerifyMissingTable(t *testing.T) {
	_, _, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", "cachectl-test-verify-nt:",
		"-mysql", "root@tcp(127.0.0.1:3306)/test", "-tables", "test.cachectl_no_such_table")
	assert.EqualError(t, err, "verify: table test.cachectl_no_such_table does not exist in the database")
	assert.Equal(t, 1, exitCode(err))
}

// TestVerifyAgainstMySQL compares the cache with rows in MariaDB: one row
// cached right, one stale, one missing, and a cached row the database does
// not have (resurrected); a tombstone of an absent row is fine.
func TestVerifyAgainstMySQL(t *testing.T) {
	const prefix = "cachectl-test-verifydb:"
	const table = "test.cachectl_verify_rows"
	rdb := sharedRedis(t, prefix)
	ctx := context.Background()
	db, err := mysqlrow.Open("root@tcp(127.0.0.1:3306)/test")
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.PingContext(ctx), "MariaDB must run on 127.0.0.1:3306 (make services)")
	for _, q := range []string{
		"DROP TABLE IF EXISTS cachectl_verify_rows",
		"CREATE TABLE cachectl_verify_rows (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(6,2))",
		"INSERT INTO cachectl_verify_rows VALUES (1, 'Zoë', 12.3), (2, 'Anne', NULL), (3, 'Sally', 0.5)",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS cachectl_verify_rows") })
	key := func(id int) string { return prefix + table + ":" + strconv.Itoa(id) }
	require.NoError(t, rdb.HSet(ctx, key(1), "v", "1", "d", `{"id":1,"name":"Zoë","price":"12.30"}`).Err())
	require.NoError(t, rdb.HSet(ctx, key(2), "v", "1", "d", `{"id":2,"name":"Anne","price":"1.00"}`).Err())
	require.NoError(t, rdb.HSet(ctx, key(98), "v", "1", "t", "1").Err())
	require.NoError(t, rdb.HSet(ctx, key(99), "v", "1", "d", `{"id":99,"name":"gone","price":null}`).Err())

	out, _, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", prefix,
		"-mysql", "root@tcp(127.0.0.1:3306)/test", "-tables", table)
	require.ErrorIs(t, err, errMismatch)
	golden(t, "verify", "mysql", out)

	require.NoError(t, rdb.HSet(ctx, key(2), "d", `{"id":2,"name":"Anne","price":null}`).Err())
	require.NoError(t, rdb.HSet(ctx, key(3), "v", "1", "d", `{"id":3,"name":"Sally","price":"0.50"}`).Err())
	require.NoError(t, rdb.Del(ctx, key(99)).Err())
	out, errOut, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", prefix,
		"-mysql", "root@tcp(127.0.0.1:3306)/test", "-tables", table)
	require.NoError(t, err, "%s%s", out, errOut)
	assert.Contains(t, out, "checked=3 ok=3 missing=0 stale=0 resurrected=0")
}
