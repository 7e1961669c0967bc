package changegen

import (
	"fmt"
	"math/rand/v2"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Cycle writes changes to one table for load generation: it goes through
// the table's keys in order, again and again, with a create for a key's
// first change and an update carrying the before image after that. Each
// change is its own binlog event in one binlog file, at strictly growing
// positions from a chosen start, so a Cycle started at another's Pos applies
// over it. Unlike Generator it keeps no expected state: load generation needs
// none, and the canonical rows would cost time. It is not safe for
// concurrent use.
type Cycle struct {
	enc  encoder
	t    *tableState // t.rows holds each key's last image
	r    *rand.Rand
	pos  uint64 // binlog position of the next change
	gtid uint64 // transaction number of the last change
	n    int    // changes written
}

// cycleThread is the MySQL connection id of the Cycle's one client.
const cycleThread = 17

// NewCycle returns a Cycle over the model table called table ("orders", the
// wide table, or one of the inventory tables) whose first change is at binlog
// position startPos. Of opts it uses Seed, Server, Database, Schemas,
// KeySchemas, Ordering, Flatten, ContextHeaders, Keys and Now, with the defaults New gives them.
func NewCycle(opts Options, table string, startPos uint64) (*Cycle, error) {
	t := modelTable(table)
	if t == nil {
		return nil, fmt.Errorf("changegen: the model has no table %q", table)
	}
	opts = opts.withDefaults()
	return &Cycle{enc: newEncoder(opts), t: newTableState(opts, t), r: newRand(opts.Seed), pos: startPos}, nil
}

// Next returns the next change: to key number n mod Keys for the nth call.
func (c *Cycle) Next() Message {
	k := c.n % c.enc.opts.Keys
	c.n++
	before := c.t.rows[k]
	op := cdc.OpUpdate
	if before == nil {
		op = cdc.OpCreate
	}
	after := c.t.newRow(c.r, k)
	c.gtid++
	src := sourceFields{snapshot: "false", seq: firstSeq, pos: c.pos, gtid: c.gtid, thread: cycleThread}
	m := c.enc.message(c.t, op, before, after, src, 0)
	c.t.rows[k] = after
	// A row event of a wide row takes a few hundred bytes of binlog.
	c.pos += 300 + uint64(c.r.IntN(400))
	return m
}

// Pos returns the binlog position the next change will carry.
func (c *Cycle) Pos() uint64 { return c.pos }
