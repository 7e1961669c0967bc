package localrun

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// RunDatabase is the MySQL database in which a run with Config.MySQLDSN
// creates the model's tables: its own, so a run never touches a database
// someone else's tables live in.
const RunDatabase = "localrun"

// ddlLock is the MySQL named lock runs hold while they recreate and read
// the model's tables, so two runs against one server (tests) do not drop a
// table the other is reading.
const ddlLock = "cloudsql_cache_localrun_ddl"

// syncRegistry does locally what `cachectl schema sync` does on the
// Debezium VM: it (re)creates gen's tables in MySQL at dsn, reads their key
// columns and types back from information_schema, and writes them to the
// column registry under prefix.
func syncRegistry(ctx context.Context, dsn string, gen *changegen.Generator, rdb redis.Cmdable, prefix string) (err error) {
	db, err := mysqlrow.Open(dsn)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	defer db.Close()
	// A named lock belongs to a connection: hold one for the whole sync.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mysql: %w (make run starts MariaDB with scripts/services.sh)", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", ddlLock).Scan(&got); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	if got.Int64 != 1 {
		return errors.New("mysql: another run held the model's tables for 30 s")
	}
	defer func() {
		_, unlockErr := conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", ddlLock)
		err = errors.Join(err, unlockErr)
	}()
	// Dropped first, so the tables are always the model's, even after the
	// model changed or someone altered them.
	for _, q := range append(gen.DropTables(), gen.CreateTables()...) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("mysql: %s: %w", q, err)
		}
	}
	entries, err := schema.Read(ctx, db, gen.Tables(), time.Now())
	if err != nil {
		return err
	}
	return schema.Write(ctx, rdb, prefix, entries)
}
