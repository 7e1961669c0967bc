package cacheaside

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// With Redis down and every database slot taken, a read gives up when its
// context ends instead of piling onto the database.
func TestDatabaseSlotsBoundFallback(t *testing.T) {
	db, err := mysqlrow.Open("root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	r := New(rdb, db, cdc.DefaultConfig(), Options{MaxDBConcurrency: 1})
	r.dbSlot <- struct{}{} // the one slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = r.Get(ctx, "test.cacheaside_none", 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	if s := r.Stats(); s.RedisDown != 1 || s.DBQueries != 0 || s.Errors != 1 {
		t.Errorf("stats %+v", s)
	}
	if !strings.Contains(err.Error(), "cacheaside") {
		t.Errorf("error %q does not say where", err)
	}
}
