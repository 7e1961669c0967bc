package cacheaside_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

const testDSN = "root@tcp(127.0.0.1:3306)/test"

// env is one test's world: a MariaDB table of its own (dropped at the end),
// a cache (Redis, under a key prefix of its own whose keys are deleted at
// the end; or a private memcached), a database pool that counts the queries
// reading the table, and a Store to apply changes as the change stream
// would.
type env struct {
	t       testing.TB
	db      *sql.DB
	rdb     *redis.Client         // Redis envs
	mc      *memcachestore.Client // memcached envs
	mcsrv   *testmemcache.Server  // memcached envs
	table   string                // "test.<name>"
	name    string
	prefix  string
	cfg     *cdc.Config
	store   applier
	queries *atomic.Int64 // row queries that reached the database
	gate    *queryGate    // holds those queries when a test asks
}

// applier is what redisstore.Store and memcachestore.Store share.
type applier interface {
	Apply(context.Context, cdc.Change) (cdc.Outcome, error)
}

// newEnv creates the table (id INT key, name, n) and a config whose table
// section is tableYAML (indented lines, may be empty), over Redis.
func newEnv(t testing.TB, tableYAML string) *env { return newCacheEnv(t, "redis", tableYAML) }

// eachCache runs test as a subtest over Redis and over memcached.
func eachCache(t *testing.T, tableYAML string, test func(t *testing.T, e *env)) {
	for _, cache := range []string{"redis", "memcached"} {
		t.Run(cache, func(t *testing.T) { test(t, newCacheEnv(t, cache, tableYAML)) })
	}
}

// newCacheEnv is newEnv over cache, "redis" or "memcached".
func newCacheEnv(t testing.TB, cache, tableYAML string) *env {
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

	if cache == "memcached" {
		e.mcsrv = testmemcache.Start(t)
		e.mc = newMemcacheClient(t, e.mcsrv.Addr())
		e.prefix = "test:"
	} else {
		// Registered before the store's Close, so its key deletion runs
		// after the store has flushed its checkpoint.
		e.rdb, e.prefix = testredis.Shared(t)
	}
	e.cfg, err = cdc.ParseConfig([]byte("prefix: \"" + e.prefix + "\"\ntables:\n  " + e.table + ":\n" + tableYAML))
	if err != nil {
		t.Fatal(err)
	}
	var closer interface{ Close(context.Context) error }
	if e.mc != nil {
		s := memcachestore.New(e.mc, e.cfg, memcachestore.Options{})
		e.store, closer = s, s
	} else {
		s := redisstore.New(e.rdb, e.cfg, redisstore.Options{})
		e.store, closer = s, s
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := closer.Close(cctx); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	return e
}

// newMemcacheClient returns a client of addrs with a short dial timeout,
// closed when the test ends.
func newMemcacheClient(tb testing.TB, addrs ...string) *memcachestore.Client {
	tb.Helper()
	c, err := memcachestore.NewClient(addrs, memcachestore.ClientOptions{DialTimeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
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
	return e.readerFor(e.cfg, opts)
}

func (e *env) readerFor(cfg *cdc.Config, opts cacheaside.Options) *cacheaside.Reader {
	if e.mc != nil {
		return cacheaside.NewMemcached(e.mc, e.db, cfg, opts)
	}
	return cacheaside.New(e.rdb, e.db, cfg, opts)
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
	ctx := context.Background()
	if e.mc != nil {
		cps := memcachestore.Checkpoints{Servers: map[string]memcachestore.Checkpoint{"srv": {Version: v}}, Tables: map[string]string{e.table: "srv"}}
		val, err := json.Marshal(cps)
		if err != nil {
			e.t.Fatal(err)
		}
		e.mcDo(&memcachestore.Op{Key: memcachestore.CheckpointKey(e.prefix), Set: true, Value: val})
		return
	}
	if err := e.rdb.HSet(ctx, redisstore.CheckpointKey(e.prefix), "table|"+e.table, "srv", "srv", string(v)).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// mcDo runs memcached commands and fails the test on an error.
func (e *env) mcDo(ops ...*memcachestore.Op) {
	e.t.Helper()
	e.mc.Do(context.Background(), ops)
	for _, op := range ops {
		if op.Err != nil {
			e.t.Fatalf("memcached %s: %v", op.Key, op.Err)
		}
	}
}

// record reads the row's record in the Redis fields' form (v, d, t, l),
// from either cache; empty when there is none.
func (e *env) record(id int) map[string]string {
	e.t.Helper()
	return e.recordOf(e.key(id))
}

func (e *env) recordOf(key string) map[string]string {
	e.t.Helper()
	if e.mc == nil {
		m, err := e.rdb.HGetAll(context.Background(), key).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		return m
	}
	get := &memcachestore.Op{Key: memcachestore.Key(e.prefix, key)}
	e.mcDo(get)
	out := map[string]string{}
	if get.Status != memcachestore.StatusHit {
		return out
	}
	r, err := memcachestore.ParseRecord(get.Value)
	if err != nil {
		e.t.Fatalf("record %s: %v", key, err)
	}
	if r.Version != "" {
		out["v"] = string(r.Version)
	}
	switch r.Kind {
	case memcachestore.KindRow:
		out["d"] = string(r.Row)
	case memcachestore.KindTombstone:
		out["t"] = "1"
	case memcachestore.KindLease:
		out["l"] = r.Lease
	}
	return out
}

// ttl is the row's record's remaining TTL: 0 for none (or no record).
// memcached counts in whole seconds.
func (e *env) ttl(id int) time.Duration {
	e.t.Helper()
	if e.mc == nil {
		return max(e.rdb.PTTL(context.Background(), e.key(id)).Val(), 0)
	}
	get := &memcachestore.Op{Key: memcachestore.Key(e.prefix, e.key(id))}
	e.mcDo(get)
	return time.Duration(max(get.TTL, 0)) * time.Second
}

// foreign puts an item that is not a record (a Redis string, a memcached
// value in no record kind) under the row's key.
func (e *env) foreign(id int) {
	e.t.Helper()
	if e.mc != nil {
		e.mcDo(&memcachestore.Op{Key: memcachestore.Key(e.prefix, e.key(id)), Set: true, Value: []byte("not a record")})
		return
	}
	if err := e.rdb.Set(context.Background(), e.key(id), "not a hash", 0).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// otherLease takes the row's fill lease as another process would, for 10s,
// and returns its token and a func that fills it with row.
func (e *env) otherLease(id int) (token string, fill func(row string)) {
	e.t.Helper()
	ctx := context.Background()
	key := e.key(id)
	if e.mc != nil {
		l := memcachestore.AcquireLeases(ctx, e.mc, e.prefix, e.table, []string{key}, 10*time.Second)[0]
		if l.State != memcachestore.LeaseGranted {
			e.t.Fatalf("other's lease: %+v", l)
		}
		return l.Token, func(row string) {
			if ok, err := memcachestore.FillLeases(ctx, e.mc, []memcachestore.Fill{{Lease: l, Row: []byte(row)}}); err != nil || !ok[0] {
				e.t.Fatalf("other's fill: %v %v", ok, err)
			}
		}
	}
	ls, err := redisstore.AcquireLeases(ctx, e.rdb, e.prefix, e.table, []string{key}, 10*time.Second)
	if err != nil || ls[0].State != redisstore.LeaseGranted {
		e.t.Fatalf("other's lease: %v %v", ls, err)
	}
	return ls[0].Token, func(row string) {
		if ok, err := redisstore.FillLeases(ctx, e.rdb, []redisstore.Fill{{Key: key, Lease: ls[0], Row: []byte(row)}}); err != nil || !ok[0] {
			e.t.Fatalf("other's fill: %v %v", ok, err)
		}
	}
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

// isForeign reports whether the item foreign put is still there, untouched.
func (e *env) isForeign(id int) bool {
	e.t.Helper()
	if e.mc != nil {
		get := &memcachestore.Op{Key: memcachestore.Key(e.prefix, e.key(id))}
		e.mcDo(get)
		return string(get.Value) == "not a record"
	}
	typ, err := e.rdb.Type(context.Background(), e.key(id)).Result()
	return err == nil && typ == "string"
}
