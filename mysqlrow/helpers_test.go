package mysqlrow_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// testDSN is the machine's MariaDB; the tests fail when it is down.
const testDSN = "root@tcp(127.0.0.1:3306)/test"

func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := mysqlrow.Open(testDSN)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("MariaDB at %s is required: %v", testDSN, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// createTable creates a table named <base>_<random> in database test from
// a DDL with the name written as %s, and drops it when the test ends. It
// returns the unqualified name.
func createTable(tb testing.TB, db *sql.DB, base, ddl string) string {
	tb.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := base + "_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(strings.ReplaceAll(ddl, "%s", "`test`.`"+name+"`")); err != nil {
		tb.Fatalf("create %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := db.Exec("DROP TABLE IF EXISTS `test`.`" + name + "`"); err != nil {
			tb.Errorf("drop %s: %v", name, err)
		}
	})
	return name
}

func exec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}
