// Package mysqlrow reads rows from MySQL (or MariaDB) by primary key and
// encodes them as the canonical row JSON of the design (section 2), byte for
// byte what the change stream writes for the same row. It is the database
// fallback of the read path: the column list comes from the table's cdc
// configuration, column types from information_schema (cached per table),
// and every value goes through the cdc.Append* encoders, the same ones the
// Debezium decoder uses, which is what keeps the two paths equal.
//
// The encoding depends on connection settings; Open and Configure force them
// (see Configure). Production is MySQL 8 and local tests run on MariaDB
// 10.11; where they differ (JSON columns) both are handled.
package mysqlrow
