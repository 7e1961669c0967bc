package mysqlrow

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The pool limits Open sets. database/sql's own defaults are no limit on
// open connections and connections kept forever: a cold cache (every read
// a miss) or a burst of verify queries could then take every connection
// Cloud SQL allows (25 on db-f1-micro, 50 on db-g1-small, a few hundred to
// thousands on larger tiers, shared with the application). Change them on
// the returned pool with SetMaxOpenConns, SetMaxIdleConns,
// SetConnMaxLifetime and SetConnMaxIdleTime.
const (
	// DefaultMaxOpenConns matches cacheaside's default MaxDBConcurrency,
	// so the read path's queries never queue in the pool behind its own.
	DefaultMaxOpenConns = 16
	// DefaultMaxIdleConns keeps the whole pool warm between bursts.
	DefaultMaxIdleConns = DefaultMaxOpenConns
	// DefaultConnMaxLifetime recycles connections before Cloud SQL's
	// maintenance or a proxy restart cuts them under a query.
	DefaultConnMaxLifetime = 30 * time.Minute
	// DefaultConnMaxIdleTime gives idle connections back to the server.
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// Open opens a connection pool to the database named by dsn (the
// go-sql-driver/mysql DSN format) with the settings of Configure forced and
// the Default* pool limits.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: dsn: %w", err)
	}
	Configure(cfg)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(DefaultMaxOpenConns)
	db.SetMaxIdleConns(DefaultMaxIdleConns)
	db.SetConnMaxLifetime(DefaultConnMaxLifetime)
	db.SetConnMaxIdleTime(DefaultConnMaxIdleTime)
	return db, nil
}

// Configure forces the driver settings the canonical encoding relies on.
// Callers that build their own *mysql.Config must call it last and must not
// change these afterwards:
//
//   - time_zone '+00:00': TIMESTAMP columns come back in UTC, as Debezium
//     writes them.
//   - parseTime off and Loc UTC: DATE, DATETIME and TIMESTAMP come back as
//     text and are parsed here, which keeps zero dates and every fractional
//     digit (parseTime would reject the one and round through time.Local).
//   - interpolateParams on: one round trip per query in the text protocol,
//     where DECIMAL arrives as exact text and BIGINT UNSIGNED as an unsigned
//     integer. FLOAT columns are selected as DOUBLE expressions so their
//     exact value survives the text protocol (see Reader).
//   - collation utf8mb4_general_ci: text of any column charset arrives as
//     UTF-8.
//
// The session must also not set sql_mode PAD_CHAR_TO_FULL_LENGTH (CHAR values
// would keep trailing spaces the binlog does not have).
func Configure(cfg *mysql.Config) {
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.ParseTime = false
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_general_ci"
}
