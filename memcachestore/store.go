package memcachestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/coalesce"
	"github.com/cloudsql-cache/cloudsql-cache/internal/position"
)

// ErrClosed is returned by Apply and ApplyBatch after Close.
var ErrClosed = errors.New("memcachestore: store closed")

// Options tune a Store; the zero value is usable.
type Options struct {
	// Logger receives warnings (restored database, failed checkpoint
	// writes); nil means slog.Default().
	Logger *slog.Logger
	// CheckpointEvery is the least time between checkpoint writes; default 1s.
	CheckpointEvery time.Duration
	// Attempts bounds how often a change is read and written again after
	// losing a compare-and-swap race before it fails (transiently, to be
	// redelivered); default 10.
	Attempts int
	// MaxBatch caps how many concurrent Apply calls are merged into one
	// batch (two round trips per node); default 256.
	MaxBatch int
	// Now is the clock for checkpoint times and expiry; default time.Now.
	Now func() time.Time
}

// Stats are a Store's counters since New.
type Stats struct {
	// RestoreWarnings counts changes far below the checkpoint from another
	// MySQL server_id: the database was restored or Debezium repointed.
	RestoreWarnings int64
	// CheckpointErrors counts failed checkpoint writes (each is retried).
	CheckpointErrors int64
	// Races counts compare-and-swap writes that lost to another writer and
	// were read again; Exhausted the changes that lost Attempts times.
	Races, Exhausted int64
	// ApplyPipelines counts the read-then-write rounds sent, ApplyCalls the
	// changes they carried.
	ApplyPipelines, ApplyCalls int64
}

// Store applies changes to memcached. It is safe for concurrent use.
type Store struct {
	client *Client
	cfg    *cdc.Config
	opts   Options
	log    *slog.Logger
	ck     *position.Tracker
	ckKey  string

	// mu guards closed; active counts calls, raised only under mu while
	// !closed, so Close can wait for them.
	mu     sync.Mutex
	closed bool
	active sync.WaitGroup

	// merge batches concurrent Apply calls (one change each, from push
	// requests): a read and a write round trip per batch instead of per
	// change. Its drainer runs with bg, cancelled when Close gives up.
	merge    *coalesce.Batcher[cdc.Change, cdc.Result]
	bg       context.Context
	cancelBg context.CancelFunc

	quit       chan struct{} // closed by Close: stops the checkpoint ticker
	tickerDone chan struct{}

	checkpointErrors, races, exhausted atomic.Int64
	pipelines, calls                   atomic.Int64
}

// New builds a Store over a client with the shared config and starts its
// checkpoint goroutine; Close stops it.
func New(client *Client, cfg *cdc.Config, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 10
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Store{
		bg:         bg,
		cancelBg:   cancel,
		client:     client,
		cfg:        cfg,
		opts:       opts,
		log:        opts.Logger,
		ck:         position.New("memcachestore", opts.Logger),
		ckKey:      CheckpointKey(cfg.Prefix),
		quit:       make(chan struct{}),
		tickerDone: make(chan struct{}),
	}
	s.merge = coalesce.New(bg, opts.MaxBatch, s.applyBatch)
	go s.checkpointTicker()
	return s
}

// Apply applies one change, as ApplyBatch does. Concurrent calls are merged
// into batches (package coalesce); in an idle process a call is sent at
// once. If ctx ends while the change waits for a batch, ctx's error is
// returned and the change may still be applied later, which is harmless.
func (s *Store) Apply(ctx context.Context, ch cdc.Change) (cdc.Outcome, error) {
	if !s.enter() {
		return cdc.OutcomeFailed, ErrClosed
	}
	defer s.active.Done()
	r, err := s.merge.Do(ctx, ch)
	if err != nil {
		return cdc.OutcomeFailed, err
	}
	return r.Outcome, r.Err
}

// ApplyBatch applies changes, in order, and returns one result per change
// (results[i] belongs to changes[i]). Changes to the same row are folded in
// order over one read of the record and written once; all the batch's
// reads go out in one pipelined round trip per node, then all its writes.
// An error is transient (a node down or full, a race lost Attempts times:
// redeliver) or wraps cdc.ErrInvalid. A batch of one (a push) goes the way
// of Apply, so concurrent pushes share round trips.
func (s *Store) ApplyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result {
	if len(changes) == 1 {
		outcome, err := s.Apply(ctx, changes[0])
		return []cdc.Result{{Outcome: outcome, Err: err}}
	}
	if !s.enter() {
		results := make([]cdc.Result, len(changes))
		for i := range results {
			results[i] = cdc.Result{Outcome: cdc.OutcomeFailed, Err: ErrClosed}
		}
		return results
	}
	defer s.active.Done()
	return s.applyBatch(ctx, changes)
}

// applyBatch is ApplyBatch inside an admitted call (or the merger's drainer).
func (s *Store) applyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result {
	results := make([]cdc.Result, len(changes))
	rows := map[string]*row{}
	var order []*row
	var done []cdc.Change
	for i, ch := range changes {
		c, res, ok := s.prepare(ctx, ch)
		if !ok {
			results[i] = res
			if res.Err == nil && ch.Op == cdc.OpTruncate {
				done = append(done, ch)
			}
			continue
		}
		c.idx = i
		key := Key(s.cfg.Prefix, ch.Key)
		r := rows[key]
		if r == nil {
			r = &row{key: key, table: ch.Table}
			rows[key] = r
			order = append(order, r)
		}
		r.changes = append(r.changes, c)
	}
	if len(order) > 0 {
		s.apply(ctx, order)
		s.raiseFloors(ctx, order)
		for _, r := range order {
			for _, c := range r.changes {
				results[c.idx] = c.res
				if c.res.Err == nil {
					done = append(done, changes[c.idx])
				}
			}
		}
	}
	s.observe(ctx, done)
	_ = s.maybeCheckpoint(ctx, false) // counted and logged inside
	return results
}

// raiseFloors raises the fill floor of each table with refresh-mode changes
// that found no record (ignored, leaving nothing) to the highest of their
// versions, before they are acknowledged: a lease taken later reads the
// floor, so its fill cannot carry a version below such a change, which the
// stored checkpoint may not show yet (it lags by up to CheckpointEvery, and
// another instance's by longer). A floor that cannot be written fails its
// changes, to be redelivered.
func (s *Store) raiseFloors(ctx context.Context, rows []*row) {
	floors := map[string]cdc.Version{}
	var tables []string
	for _, r := range rows {
		for _, c := range r.changes {
			if c.refresh && c.res.Err == nil && c.res.Outcome == cdc.OutcomeIgnored {
				if _, seen := floors[r.table]; !seen {
					tables = append(tables, r.table)
				}
				floors[r.table] = max(floors[r.table], c.ch.Version)
			}
		}
	}
	if len(tables) == 0 {
		return
	}
	errs := map[string]error{}
	pending := tables
	for attempt := 1; len(pending) > 0; attempt++ {
		gets := make([]*Op, len(pending))
		for i, t := range pending {
			gets[i] = &Op{Key: FloorKey(s.cfg.Prefix, t)}
		}
		s.client.Do(ctx, gets)
		var sets []*Op
		var setFor []string
		for i, t := range pending {
			g := gets[i]
			cur, err := watermark(g)
			if g.Err != nil {
				err = g.Err
			}
			switch {
			case err != nil:
				errs[t] = err
			case cur < floors[t]:
				sets = append(sets, &Op{Key: g.Key, Set: true, Value: []byte(floors[t]), CAS: g.Token, Add: g.Status != StatusHit})
				setFor = append(setFor, t)
			}
		}
		s.client.Do(ctx, sets)
		var again []string
		for j, set := range sets {
			t := setFor[j]
			switch {
			case set.Err != nil:
				errs[t] = set.Err
			case set.Status == StatusStored:
			case attempt >= s.opts.Attempts:
				s.exhausted.Add(1)
				errs[t] = fmt.Errorf("lost %d compare-and-swap races in a row", attempt)
			default:
				s.races.Add(1)
				again = append(again, t)
			}
		}
		pending = again
	}
	for _, r := range rows {
		err := errs[r.table]
		if err == nil {
			continue
		}
		for _, c := range r.changes {
			if c.refresh && c.res.Err == nil && c.res.Outcome == cdc.OutcomeIgnored {
				c.res = cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("memcachestore: fill floor of %s: %w", r.table, err)}
			}
		}
	}
}

// change is one change on its way: the record it writes and its result.
type change struct {
	idx     int
	ch      cdc.Change
	kind    byte // KindRow, KindTombstone or KindMarker
	refresh bool
	exptime int64
	res     cdc.Result
}

// row is the changes of one batch to one record.
type row struct {
	key, table string
	changes    []*change
	get, set   Op
	pending    bool // not yet written or decided
}

// apply reads, decides and writes rows until each is written, needs no
// write, or has lost Attempts races.
func (s *Store) apply(ctx context.Context, rows []*row) {
	pending := rows
	for _, r := range rows {
		r.pending = true
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		s.pipelines.Add(1)
		for _, r := range pending {
			s.calls.Add(int64(len(r.changes)))
		}
		// Round one: every record and the watermark of every table.
		ops := make([]*Op, 0, len(pending)+1)
		marks := map[string]*Op{}
		for _, r := range pending {
			r.get = Op{Key: r.key}
			ops = append(ops, &r.get)
			if marks[r.table] == nil {
				op := &Op{Key: TruncatedKey(s.cfg.Prefix, r.table)}
				marks[r.table] = op
				ops = append(ops, op)
			}
		}
		s.client.Do(ctx, ops)
		// Decide, then round two: the writes.
		var writes []*Op
		var writing []*row
		for _, r := range pending {
			mark := marks[r.table]
			if err := firstErr(&r.get, mark); err != nil {
				r.fail(fmt.Errorf("memcachestore: apply %s: %w", r.key, err))
				continue
			}
			wm, err := watermark(mark)
			if err != nil {
				r.fail(err)
				continue
			}
			if !s.decide(r, wm) {
				continue
			}
			writes = append(writes, &r.set)
			writing = append(writing, r)
		}
		s.client.Do(ctx, writes)
		var again []*row
		for _, r := range writing {
			switch {
			case r.set.Err != nil:
				r.fail(fmt.Errorf("memcachestore: apply %s: %w", r.key, r.set.Err))
			case r.set.Status == StatusStored:
				r.pending = false
			case attempt >= s.opts.Attempts:
				s.exhausted.Add(1)
				r.fail(fmt.Errorf("memcachestore: apply %s: lost %d compare-and-swap races in a row", r.key, attempt))
			default:
				s.races.Add(1)
				again = append(again, r)
			}
		}
		pending = again
	}
}

func firstErr(ops ...*Op) error {
	for _, op := range ops {
		if op.Err != nil {
			return op.Err
		}
	}
	return nil
}

// watermark reads a truncate watermark item's version.
func watermark(op *Op) (cdc.Version, error) {
	if op.Status != StatusHit {
		return "", nil
	}
	if len(op.Value) != cdc.VersionLen || !digits(op.Value) {
		return "", fmt.Errorf("%w: watermark %s: %.60q is not a version", ErrNotRecord, op.Key, op.Value)
	}
	return cdc.Version(op.Value), nil
}

func (r *row) fail(err error) {
	r.pending = false
	for _, c := range r.changes {
		c.res = cdc.Result{Outcome: cdc.OutcomeFailed, Err: err}
	}
}

// decide folds the row's changes, in order, over the record read (r.get)
// and the table's watermark wm, setting each change's result. It returns
// true with r.set filled when the record must be written.
func (s *Store) decide(r *row, wm cdc.Version) bool {
	var cur Record
	present := false
	if r.get.Status == StatusHit {
		rec, err := ParseRecord(r.get.Value)
		if err != nil {
			// Not ours (or damaged): fail, do not overwrite, as Redis does with
			// a key of another type.
			r.fail(fmt.Errorf("memcachestore: apply %s: %w", r.key, err))
			return false
		}
		cur, present = rec, true
		// A record at or below the watermark was truncated: absent. A bare
		// lease carries no version and counts as present.
		if rec.Version != "" && rec.Version <= wm {
			cur, present = Record{}, false
		}
	}
	var next Record
	write := false
	for _, c := range r.changes {
		v := c.ch.Version
		switch {
		case cur.Version >= v && cur.Version != "":
			c.res = cdc.Result{Outcome: cdc.OutcomeStale}
			continue
		case wm >= v:
			c.res = cdc.Result{Outcome: cdc.OutcomeStale}
			continue
		case c.refresh && !present:
			c.res = cdc.Result{Outcome: cdc.OutcomeIgnored}
			continue
		}
		next = Record{Kind: c.kind, Version: v}
		if c.kind == KindRow {
			next.Row = c.ch.Row
		}
		cur, present, write = next, true, true
		r.set.Exptime = c.exptime
		switch {
		case c.ch.Op == cdc.OpDelete:
			c.res = cdc.Result{Outcome: cdc.OutcomeDeleted}
		case c.ch.Untyped:
			c.res = cdc.Result{Outcome: cdc.OutcomeUntyped}
		default:
			c.res = cdc.Result{Outcome: cdc.OutcomeApplied}
		}
	}
	if !write {
		r.pending = false
		return false
	}
	r.set = Op{Key: r.key, Set: true, Value: next.Append(nil), Exptime: r.set.Exptime}
	if r.get.Status == StatusHit {
		r.set.CAS = r.get.Token
	} else {
		r.set.Add = true
	}
	return true
}

// prepare checks a change and returns it ready to apply; ok is false, with
// the result, when it needs no record written (ignored, truncate, invalid).
// A truncate raises its table's watermark here.
func (s *Store) prepare(ctx context.Context, ch cdc.Change) (c *change, res cdc.Result, ok bool) {
	p, res, ok := s.cfg.Plan(ch)
	if !ok {
		return nil, res, false
	}
	if p.Kind == cdc.KindTruncate {
		return nil, s.truncate(ctx, ch), false
	}
	c = &change{ch: ch, refresh: p.Refresh, exptime: exptime(p.TTL, s.opts.Now())}
	switch p.Kind {
	case cdc.KindTombstone:
		c.kind = KindTombstone
	case cdc.KindMarker:
		c.kind = KindMarker
	default:
		c.kind = KindRow
	}
	return c, cdc.Result{}, true
}

// truncate raises the table's watermark to the truncate's version, never
// lowering it: from then on every record of the table at or below it is
// absent to writers and readers. A newer watermark already there makes the
// truncate stale.
func (s *Store) truncate(ctx context.Context, ch cdc.Change) cdc.Result {
	key := TruncatedKey(s.cfg.Prefix, ch.Table)
	for attempt := 1; ; attempt++ {
		get := Op{Key: key}
		s.client.Do(ctx, []*Op{&get})
		if get.Err != nil {
			return cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("memcachestore: truncate %s: %w", ch.Table, get.Err)}
		}
		wm, err := watermark(&get)
		if err != nil {
			return cdc.Result{Outcome: cdc.OutcomeFailed, Err: err}
		}
		if wm > ch.Version {
			return cdc.Result{Outcome: cdc.OutcomeStale}
		}
		if wm == ch.Version {
			return cdc.Result{Outcome: cdc.OutcomeApplied} // a duplicate: done before
		}
		set := Op{Key: key, Set: true, Value: []byte(ch.Version), CAS: get.Token, Add: get.Status != StatusHit}
		s.client.Do(ctx, []*Op{&set})
		switch {
		case set.Err != nil:
			return cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("memcachestore: truncate %s: %w", ch.Table, set.Err)}
		case set.Status == StatusStored:
			return cdc.Result{Outcome: cdc.OutcomeApplied}
		case attempt >= s.opts.Attempts:
			s.exhausted.Add(1)
			return cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("memcachestore: truncate %s: lost %d races in a row", ch.Table, attempt)}
		}
		s.races.Add(1)
	}
}

func (s *Store) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.Add(1)
	return true
}

// Close stops accepting changes, waits for the calls in progress and the
// merged batches still queued, and writes the checkpoint. If ctx ends
// first, the queued batches are cancelled and ctx's error returned.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	idle := make(chan struct{})
	go func() {
		s.active.Wait()
		s.merge.Wait() // after active: only an Apply call starts a drainer
		<-s.tickerDone
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		s.cancelBg()
		<-idle
		return ctx.Err()
	}
	defer s.cancelBg()
	return s.maybeCheckpoint(ctx, true)
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		RestoreWarnings:  s.ck.Warnings(),
		CheckpointErrors: s.checkpointErrors.Load(),
		Races:            s.races.Load(),
		Exhausted:        s.exhausted.Load(),
		ApplyPipelines:   s.pipelines.Load(),
		ApplyCalls:       s.calls.Load(),
	}
}

// Warnings returns Stats().RestoreWarnings.
func (s *Store) Warnings() int64 { return s.ck.Warnings() }
