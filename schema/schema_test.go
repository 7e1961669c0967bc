package schema_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

const testDSN = "root@tcp(127.0.0.1:3306)/test"

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := mysqlrow.Open(testDSN)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, db.PingContext(ctx), "MariaDB at %s is required", testDSN)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// table creates test.<base>_<random> from cols and drops it at the end.
func table(t *testing.T, db *sql.DB, base, cols string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := base + "_" + hex.EncodeToString(b[:])
	_, err := db.Exec("CREATE TABLE `test`.`" + name + "` (" + cols + ")")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS `test`.`" + name + "`") })
	return "test." + name
}

func TestReadFromInformationSchema(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	tbl := table(t, db, "schema_read", "b INT NOT NULL, a VARCHAR(10) NOT NULL, "+
		"u BIGINT UNSIGNED, z INT(5) UNSIGNED ZEROFILL, d DECIMAL(10,2), f FLOAT(10,2), at DATETIME(3), "+
		"ts TIMESTAMP(6) NULL, e ENUM('x','y'), j JSON, bits BIT(10), g GEOMETRY, txt LONGTEXT, PRIMARY KEY (a, b)")
	now := time.UnixMilli(1714568645123)
	got, err := schema.Read(ctx, db, []string{tbl}, now)
	require.NoError(t, err)
	ts := got[tbl]
	require.NotNil(t, ts)
	assert.Equal(t, []string{"a", "b"}, ts.Key, "key columns in key order, not table order")
	assert.Equal(t, int64(1714568645123), ts.ReadAtMs)
	var names, types []string
	for _, c := range ts.Columns {
		names = append(names, c.Name)
		types = append(types, c.Type)
	}
	assert.Equal(t, []string{"b", "a", "u", "z", "d", "f", "at", "ts", "e", "j", "bits", "g", "txt"}, names)
	// MariaDB prints display widths; its JSON is longtext with json_valid,
	// recorded as json. A plain LONGTEXT stays text.
	assert.Equal(t, []string{"int(11)", "varchar(10)", "bigint(20) unsigned", "int(5) unsigned zerofill", "decimal(10,2)",
		"float(10,2)", "datetime(3)", "timestamp(6)", "enum('x','y')", "json", "bit(10)", "geometry", "longtext"}, types)
	for _, c := range ts.Columns {
		_, ok := ts.Type(c.Name)
		assert.True(t, ok, "%s %s is typed", c.Name, c.Type)
	}

	_, err = schema.Read(ctx, db, []string{"test.no_such_table_here"}, now)
	assert.ErrorContains(t, err, "not found")
	_, err = schema.Read(ctx, db, []string{"nodot"}, now)
	assert.ErrorContains(t, err, "db.table")

	nokey := table(t, db, "schema_nokey", "x INT")
	got, err = schema.Read(ctx, db, []string{nokey}, now)
	require.NoError(t, err)
	assert.Empty(t, got[nokey].Key)
}

func TestWriteLoadRoundTrip(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	ctx := context.Background()
	ts, err := cdc.NewTableSchema([]string{"id"}, []cdc.SchemaColumn{{Name: "id", Type: "bigint unsigned"}, {Name: "at", Type: "datetime(3)"}}, 42)
	require.NoError(t, err)
	nokey, err := cdc.NewTableSchema(nil, []cdc.SchemaColumn{{Name: "x", Type: "int"}}, 43)
	require.NoError(t, err)
	require.NoError(t, schema.Write(ctx, rdb, prefix, map[string]*cdc.TableSchema{"shop.t": ts, "shop.n": nokey}))

	raw, err := rdb.HGet(ctx, prefix+"__cdc:schema", "shop.t").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"key":["id"],"columns":[{"name":"id","type":"bigint unsigned"},{"name":"at","type":"datetime(3)"}],"read_at_ms":42}`, raw)
	raw, err = rdb.HGet(ctx, prefix+"__cdc:schema", "shop.n").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"key":[],"columns":[{"name":"x","type":"int"}],"read_at_ms":43}`, raw)

	require.NoError(t, rdb.HSet(ctx, prefix+"__cdc:schema", "shop.bad", `{"key":["nope"],"columns":[{"name":"x","type":"int"}]}`).Err())
	var got *cdc.Registry
	l := &schema.Loader{Redis: rdb, Prefix: prefix, Set: func(r *cdc.Registry) { got = r }}
	require.NoError(t, l.Load(ctx))
	require.NotNil(t, got)
	assert.Len(t, got.Tables, 2, "the bad entry is left out, the others kept")
	assert.Equal(t, []string{"id"}, got.Lookup("shop.t").Key)
	ct, ok := got.Lookup("shop.t").Type("at")
	assert.True(t, ok)
	assert.Equal(t, 3, ct.Precision)
	assert.Nil(t, got.Lookup("shop.bad"))

	_, bad, err := schema.Load(ctx, rdb, prefix)
	require.NoError(t, err)
	require.Len(t, bad, 1)
	assert.Contains(t, bad[0], "shop.bad")

	// An empty registry is a registry with no tables, not an error.
	reg, bad, err := schema.Load(ctx, rdb, prefix+"other:")
	require.NoError(t, err)
	assert.Empty(t, bad)
	assert.Empty(t, reg.Tables)
}

// A failed load keeps the snapshot in use: Set is not called.
func TestLoaderKeepsSnapshotOnError(t *testing.T) {
	srv := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	calls := 0
	l := &schema.Loader{Redis: c, Set: func(*cdc.Registry) { calls++ }}
	require.NoError(t, l.Load(context.Background()))
	assert.Equal(t, 1, calls)
	srv.Kill()
	assert.Error(t, l.Load(context.Background()))
	assert.Equal(t, 1, calls)
}
