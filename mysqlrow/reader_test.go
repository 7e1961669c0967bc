package mysqlrow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

func TestRowsCompositeKeyAndColumns(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_multi", `CREATE TABLE %s (
		shop INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT, note VARCHAR(20),
		PRIMARY KEY (sku, shop))`)
	table := "test." + name
	exec(t, db, "INSERT INTO `test`.`"+name+"` VALUES (1,'a:b',5,'x'),(1,'c',6,'y'),(2,'a:b',7,NULL),(3,'50%',8,'z')")
	cfg, err := cdc.ParseConfig([]byte("prefix: \"p:\"\ntables:\n  " + table + ":\n    columns: [qty, note]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := mysqlrow.NewReader(db, cfg)
	ctx := context.Background()

	// Key order is the primary key's (sku, shop), not the column order; key
	// columns left out of the row are still read for the key.
	row, err := r.Row(ctx, table, "a:b", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(row.JSON), `{"qty":7,"note":null}`; got != want {
		t.Errorf("row %s, want %s", got, want)
	}
	if got, want := row.Key, "p:"+table+":a%3Ab:2"; got != want {
		t.Errorf("key %q, want %q", got, want)
	}

	rows, err := r.Rows(ctx, table, [][]any{{"a:b", 1}, {"c", 1}, {"50%", 3}, {"nope", 1}, {"c", 9}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, row := range rows {
		got[row.Key] = string(row.JSON)
	}
	want := map[string]string{
		"p:" + table + ":a%3Ab:1": `{"qty":5,"note":"x"}`,
		"p:" + table + ":c:1":     `{"qty":6,"note":"y"}`,
		"p:" + table + ":50%25:3": `{"qty":8,"note":"z"}`,
	}
	if len(got) != len(want) {
		t.Errorf("Rows returned %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Rows[%s] = %q, want %q", k, got[k], v)
		}
	}

	if _, err := r.Row(ctx, table, "c"); err == nil || !strings.Contains(err.Error(), "2 key columns, got 1") {
		t.Errorf("wrong key count: err %v", err)
	}
	if _, err := r.Row(ctx, table, 1.5, 1); err == nil || !strings.Contains(err.Error(), "not a supported key type") {
		t.Errorf("float key: err %v", err)
	}
	if _, err := r.Row(ctx, "test.no_such_table_mysqlrow", 1); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown table: err %v", err)
	}
	if _, err := r.Row(ctx, "nodot", 1); err == nil || !strings.Contains(err.Error(), "not db.table") {
		t.Errorf("bad table name: err %v", err)
	}
}

func TestRowsBatchLargerThanMaxBatch(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_batch", "CREATE TABLE %s (id BIGINT UNSIGNED PRIMARY KEY, n INT)")
	var sb strings.Builder
	sb.WriteString("INSERT INTO `test`.`" + name + "` VALUES ")
	n := mysqlrow.MaxBatch + 10
	for i := 1; i <= n; i++ {
		if i > 1 {
			sb.WriteString(",")
		}
		sb.WriteString("(" + itoa(i) + "," + itoa(i*2) + ")")
	}
	exec(t, db, sb.String())
	pks := make([][]any, 0, n+1)
	for i := 1; i <= n; i++ {
		pks = append(pks, []any{uint64(i)})
	}
	pks = append(pks, []any{json.RawMessage("18446744073709551615")})
	r := mysqlrow.NewReader(db, cdc.DefaultConfig())
	rows, err := r.Rows(context.Background(), "test."+name, pks)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("got %d rows, want %d", len(rows), n)
	}
	seen := map[string]bool{}
	for _, row := range rows {
		id := strings.TrimPrefix(row.Key, "test."+name+":")
		if seen[id] {
			t.Errorf("row %s returned twice", id)
		}
		seen[id] = true
		var v struct{ ID, N int }
		if err := json.Unmarshal(row.JSON, &v); err != nil || itoa(v.ID) != id || v.N != 2*v.ID {
			t.Errorf("row %s: %s (%v)", id, row.JSON, err)
		}
	}
}

func TestZeroDatesAndKeyOverride(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_zero", `CREATE TABLE %s (
		id INT PRIMARY KEY, code VARCHAR(10) NOT NULL, d DATE NOT NULL, dn DATETIME(3) NULL, tn TIMESTAMP NULL)`)
	table := "test." + name
	conn, err := db.Conn(context.Background()) // one session: sql_mode is per session
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET SESSION sql_mode = ''",
		"INSERT INTO `test`.`" + name + "` VALUES (1, 'K1', '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = conn.Close()
	// A config key replaces the primary key for lookups and the Redis key.
	cfg, err := cdc.ParseConfig([]byte("tables:\n  " + table + ":\n    key: [code]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := mysqlrow.NewReader(db, cfg)
	row, err := r.Row(context.Background(), table, "K1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(row.JSON), `{"id":1,"code":"K1","d":"1970-01-01","dn":null,"tn":null}`; got != want {
		t.Errorf("zero dates: %s, want %s", got, want)
	}
	if row.Key != table+":K1" {
		t.Errorf("key %q", row.Key)
	}
}

func TestSchemaChangeIsPickedUp(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_ddl", "CREATE TABLE %s (id INT PRIMARY KEY, a INT, b INT)")
	table := "test." + name
	exec(t, db, "INSERT INTO `test`.`"+name+"` VALUES (1, 2, 3)")
	r := mysqlrow.NewReader(db, cdc.DefaultConfig())
	ctx := context.Background()
	if row, err := r.Row(ctx, table, 1); err != nil || string(row.JSON) != `{"id":1,"a":2,"b":3}` {
		t.Fatalf("before DDL: %s, %v", row.JSON, err)
	}
	// A dropped column fails the cached query; the reader reloads once.
	exec(t, db, "ALTER TABLE `test`.`"+name+"` DROP COLUMN b")
	if row, err := r.Row(ctx, table, 1); err != nil || string(row.JSON) != `{"id":1,"a":2}` {
		t.Fatalf("after DROP COLUMN: %s, %v", row.JSON, err)
	}
	// An added column appears after Forget (or SchemaMaxAge).
	exec(t, db, "ALTER TABLE `test`.`"+name+"` ADD COLUMN c VARCHAR(5) DEFAULT 'new'")
	r.Forget(table)
	if row, err := r.Row(ctx, table, 1); err != nil || string(row.JSON) != `{"id":1,"a":2,"c":"new"}` {
		t.Fatalf("after ADD COLUMN: %s, %v", row.JSON, err)
	}
}

func TestUnsupportedTypeIsAClearError(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_inet", "CREATE TABLE %s (id INT PRIMARY KEY, addr INET6)")
	table := "test." + name
	_, err := mysqlrow.NewReader(db, cdc.DefaultConfig()).Row(context.Background(), table, 1)
	if err == nil || !strings.Contains(err.Error(), "addr") || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("err %v, want one naming the column", err)
	}
	// Excluded, the column does not matter.
	cfg, err := cdc.ParseConfig([]byte("tables:\n  " + table + ":\n    exclude: [addr]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mysqlrow.NewReader(db, cfg).Row(context.Background(), table, 1); !errors.Is(err, mysqlrow.ErrNoRow) {
		t.Fatalf("with addr excluded: err %v, want ErrNoRow", err)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
