package cacheaside_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

const testDSN = "root@tcp(127.0.0.1:3306)/test"

// env is one test's world: a MariaDB table of its own (dropped at the end),
// a Redis key prefix of its own (its keys deleted at the end), a database
// pool that counts the queries reading the table, and a Store to apply
// changes as the change stream would.
type env struct {
	t       testing.TB
	db      *sql.DB
	rdb     *redis.Client
	table   string // "test.<name>"
	name    string
	prefix  string
	cfg     *cdc.Config
	store   *redisstore.Store
	queries *atomic.Int64 // row queries that reached the database
	gate    *queryGate    // holds those queries when a test asks
}

// newEnv creates the table (id INT key, name, n) and a config whose table
// section is tableYAML (indented lines, may be empty).
func newEnv(t testing.TB, tableYAML string) *env {
	t.Helper()
	ctx := context.Background()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b[:])
	e := &env{t: t, name: "cacheaside_" + suffix, queries: new(atomic.Int64), gate: newQueryGate()}
	e.table = "test." + e.name

	dcfg, err := mysql.ParseDSN(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	mysqlrow.Configure(dcfg)
	conn, err := mysql.NewConnector(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	e.db = sql.OpenDB(countingConnector{Connector: conn, match: "FROM `test`.`" + e.name + "`", n: e.queries, gate: e.gate})
	if err := e.db.PingContext(ctx); err != nil {
		t.Fatalf("MariaDB at %s is required: %v", testDSN, err)
	}
	e.exec("CREATE TABLE `test`.`" + e.name + "` (id INT PRIMARY KEY, name VARCHAR(20), n INT)")
	t.Cleanup(func() {
		e.exec("DROP TABLE `test`.`" + e.name + "`")
		_ = e.db.Close()
	})

	// Registered before the store's Close, so its key deletion runs after
	// the store has flushed its checkpoint.
	e.rdb, e.prefix = testredis.Shared(t)
	e.cfg, err = cdc.ParseConfig([]byte("prefix: \"" + e.prefix + "\"\ntables:\n  " + e.table + ":\n" + tableYAML))
	if err != nil {
		t.Fatal(err)
	}
	e.store = redisstore.New(e.rdb, e.cfg, redisstore.Options{})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := e.store.Close(cctx); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	return e
}

func (e *env) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(query, args...); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

func (e *env) insert(id int, name string, n int) {
	e.t.Helper()
	e.exec("INSERT INTO `test`.`"+e.name+"` VALUES (?, ?, ?)", id, name, n)
}

func (e *env) key(id int) string { return e.prefix + e.table + ":" + strconv.Itoa(id) }

func (e *env) reader(opts cacheaside.Options) *cacheaside.Reader {
	return cacheaside.New(e.rdb, e.db, e.cfg, opts)
}

// apply applies a change as the handler would, with server "srv".
func (e *env) apply(op cdc.Op, id int, row string, v cdc.Version) cdc.Outcome {
	e.t.Helper()
	ch := cdc.Change{Op: op, Table: e.table, Key: e.key(id), Version: v, Server: "srv"}
	if row != "" {
		ch.Row = []byte(row)
	}
	out, err := e.store.Apply(context.Background(), ch)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) setCheckpoint(v cdc.Version) {
	e.t.Helper()
	if err := e.rdb.HSet(context.Background(), redisstore.CheckpointKey(e.prefix), "table|"+e.table, "srv", "srv", string(v)).Err(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) record(id int) map[string]string {
	e.t.Helper()
	m, err := e.rdb.HGetAll(context.Background(), e.key(id)).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// countingConnector counts the queries whose text contains match: an
// independent check of the Reader's own DBQueries counter.
type countingConnector struct {
	driver.Connector
	match string
	n     *atomic.Int64
	gate  *queryGate
}

// queryGate holds the counted queries while closed, and counts those in
// flight (held or running).
type queryGate struct {
	open     atomic.Pointer[chan struct{}] // closed: queries pass
	inFlight atomic.Int64
	peak     atomic.Int64 // most in flight at once
}

func newQueryGate() *queryGate {
	g := &queryGate{}
	open := make(chan struct{})
	close(open)
	g.open.Store(&open)
	return g
}

// hold makes queries wait until the returned func is called.
func (g *queryGate) hold() (release func()) {
	open := make(chan struct{})
	g.open.Store(&open)
	return func() { close(open) }
}

func (g *queryGate) enter() {
	n := g.inFlight.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	<-*g.open.Load()
}

// fullConn is what go-sql-driver/mysql's connections implement.
type fullConn interface {
	driver.Conn
	driver.QueryerContext
	driver.ExecerContext
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.NamedValueChecker
	driver.SessionResetter
	driver.Validator
	driver.Pinger
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{fullConn: conn.(fullConn), c: c}, nil
}

type countingConn struct {
	fullConn
	c countingConnector
}

func (cc *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !strings.Contains(query, cc.c.match) {
		return cc.fullConn.QueryContext(ctx, query, args)
	}
	cc.c.n.Add(1)
	cc.c.gate.enter()
	defer cc.c.gate.inFlight.Add(-1)
	return cc.fullConn.QueryContext(ctx, query, args)
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
}
