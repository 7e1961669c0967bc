package mysqlrow_test

import (
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// Open bounds its pool: database/sql's default is no limit, which a cold
// cache's misses would turn into as many Cloud SQL connections.
func TestOpenBoundsThePool(t *testing.T) {
	db := openDB(t)
	if got := db.Stats().MaxOpenConnections; got != mysqlrow.DefaultMaxOpenConns {
		t.Errorf("MaxOpenConnections = %d, want %d", got, mysqlrow.DefaultMaxOpenConns)
	}
}
