package cdc

import "errors"

// Op is what a change does to its row.
type Op byte

// The operations of a Debezium change event, plus OpIgnore for messages that
// are recognised but carry no row change.
const (
	OpCreate   Op = 'c'
	OpUpdate   Op = 'u'
	OpDelete   Op = 'd'
	OpRead     Op = 'r' // snapshot read
	OpTruncate Op = 't'
	OpIgnore   Op = 'i' // heartbeat, schema change, transaction BEGIN/END
)

// String returns the one-letter Debezium name of the op ("i" for OpIgnore).
func (o Op) String() string { return string(rune(o)) }

// IsUpsert reports whether the op writes a row: create, update or snapshot read.
func (o Op) IsUpsert() bool { return o == OpCreate || o == OpUpdate || o == OpRead }

// Change is one decoded message: a row change ready to apply, a truncate, or
// something to acknowledge and ignore.
type Change struct {
	Op Op
	// Table is "db.table".
	Table string
	// Key is the full Redis key of the row (prefix included); empty for
	// truncates and ignored messages.
	Key string
	// Row is the row as canonical JSON, after column filtering; nil for
	// deletes, truncates and ignored messages.
	Row []byte
	// Version orders changes to the same row; empty for ignored messages.
	Version Version
	// Server is the Debezium server name (source.name, the topic prefix).
	Server string
	// ServerID is the MySQL server_id that wrote the binlog event.
	ServerID int64
	// CommitMs is when MySQL committed the change (source.ts_ms), Unix ms.
	CommitMs int64
	// EventMs is when Debezium processed the change (envelope ts_ms), Unix ms.
	EventMs int64
	// Snapshot is true for changes read by a snapshot.
	Snapshot bool
	// Reason says why an OpIgnore message is ignored, e.g. "heartbeat".
	Reason string
	// Untyped marks an upsert whose row (a message without a schema) has a
	// column neither the config's types nor the column registry type: its
	// values cannot be made canonical, so Row is nil and stores write a
	// marker (readers miss and read MySQL), reporting OutcomeUntyped.
	Untyped bool
}

// Outcome is what became of one message; metrics count by it.
type Outcome uint8

// The outcomes of design section 3. Applied counts upserts written (and
// truncates started), Deleted tombstones written; Ignored covers heartbeats,
// schema changes, unlisted tables and refresh-mode changes for rows the cache
// does not hold.
const (
	OutcomeApplied Outcome = iota
	OutcomeDeleted
	OutcomeStale
	OutcomeIgnored
	OutcomeRejected
	OutcomeFailed
	// OutcomeUntyped is an Untyped change applied as a marker.
	OutcomeUntyped
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"applied", "deleted", "stale", "ignored", "rejected", "failed", "untyped"}

// String returns the outcome's metric label.
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Result is what became of one change a store applied.
type Result struct {
	// Outcome is what became of the change; OutcomeFailed when Err is set.
	Outcome Outcome
	// Err is a transient failure (cache unreachable, timeout), or wraps
	// ErrInvalid for a change that can never apply.
	Err error
}

// ErrInvalid wraps errors about a change that can never be applied (no key,
// no row, a malformed version, an unknown op): a bug upstream, not a
// transient failure, so callers park the message instead of retrying it.
var ErrInvalid = errors.New("invalid change")
