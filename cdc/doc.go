// Package cdc holds the domain of cloudsql-cache: a row change, its version,
// the cache key it lands on, the per-table configuration, and the canonical
// JSON encoding of MySQL values that both the change stream and the database
// fallback must produce byte for byte. It does no I/O.
package cdc
