package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/coalesce"
	"github.com/cloudsql-cache/cloudsql-cache/internal/position"
)

// ErrClosed is returned by Apply and ApplyBatch after Close.
var ErrClosed = errors.New("redisstore: store closed")

// Options tune a Store; the zero value is usable.
type Options struct {
	// Logger receives warnings (restored database, abandoned truncates,
	// failed checkpoint writes); nil means slog.Default().
	Logger *slog.Logger
	// CheckpointEvery is the least time between checkpoint writes; default 1s.
	CheckpointEvery time.Duration
	// TruncateBatch is a truncate's SCAN COUNT and delete pipeline size;
	// default 500.
	TruncateBatch int
	// MaxBatch caps how many changes go in one apply script call (one
	// Redis command); default 256.
	MaxBatch int
	// Now is the clock for checkpoint times and rate limits; default time.Now.
	Now func() time.Time
}

// Stats are a Store's counters since New.
type Stats struct {
	// RestoreWarnings counts changes far below the checkpoint from another
	// MySQL server_id: the database was restored or Debezium repointed.
	RestoreWarnings int64
	// TruncateErrors counts truncates abandoned after retries.
	TruncateErrors int64
	// CheckpointErrors counts failed checkpoint writes (each is retried).
	CheckpointErrors int64
	// ApplyPipelines counts the apply script calls (one per coalesced
	// batch of Apply calls, or per MaxBatch of an ApplyBatch), and
	// ApplyCalls the changes they carried: their ratio is the batch size.
	ApplyPipelines, ApplyCalls int64
}

// Store applies changes to the cache. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	cfg    *cdc.Config
	opts   Options // defaults filled in
	log    *slog.Logger

	// mu guards closed.
	mu     sync.Mutex
	closed bool

	// merge batches concurrent Apply calls (package coalesce, "send when
	// idle"): the yield before a lone call is sent costs nothing when
	// nothing else is runnable, and on a busy CPU turns a lone call and a
	// small batch into one full batch (about 24 changes a call instead of
	// 2–7 in `make bench`).
	merge *coalesce.Batcher[*request, cdc.Result]

	// active counts Apply and ApplyBatch calls; it is only raised from zero
	// under mu while !closed, so Close can wait for it.
	active    sync.WaitGroup
	truncates sync.WaitGroup

	// bg is the context of background work (merged batches no caller
	// leads, truncates, checkpoint writes); cancelled when Close gives up
	// waiting.
	bg         context.Context
	cancelBg   context.CancelFunc
	quit       chan struct{} // closed by Close: stops the checkpoint ticker
	tickerDone chan struct{}

	ck    *position.Tracker
	ckKey string // CheckpointKey

	// requests recycles Apply's requests.
	requests sync.Pool
	// applySha is the apply script's SHA-1, truncated the watermark hash's
	// key (TruncatedKey) and checkpoint the checkpoint hash's (ckKey), boxed
	// once for every EVALSHA.
	applySha, truncated, checkpoint any

	truncateErrors, checkpointErrors atomic.Int64
	applyPipelines, applyCalls       atomic.Int64
}

// request is one change on its way to Redis: its part of the apply
// script's arguments, and its result.
type request struct {
	ch      cdc.Change
	kind    any        // kindRow, kindTombstone or kindMarker, boxed once (a constant)
	refresh any        // "1" in refresh mode, else "0"
	ttl     int64      // ms; 0 none
	res     cdc.Result // set by exec
}

// New builds a Store over a go-redis client (a *redis.Client or a cluster
// client) with the shared config, and starts its checkpoint goroutine;
// Close stops it.
func New(client redis.UniversalClient, cfg *cdc.Config, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Second
	}
	if opts.TruncateBatch <= 0 {
		opts.TruncateBatch = 500
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Store{
		client:     client,
		cfg:        cfg,
		opts:       opts,
		log:        opts.Logger,
		quit:       make(chan struct{}),
		tickerDone: make(chan struct{}),
		bg:         bg,
		cancelBg:   cancel,
		ck:         position.New("redisstore", opts.Logger),
		ckKey:      CheckpointKey(cfg.Prefix),
		applySha:   applyScript.Hash(),
		truncated:  TruncatedKey(cfg.Prefix),
		checkpoint: CheckpointKey(cfg.Prefix),
	}
	s.merge = coalesce.New(bg, opts.MaxBatch, s.sendMerged)
	go s.checkpointTicker()
	return s
}

// Apply applies one change atomically and returns its outcome. An error
// means a transient failure (Redis unreachable, timeout: answer 503 so
// Pub/Sub retries), ctx's error when the caller gave up (the change may
// still be applied, which is harmless), or wraps cdc.ErrInvalid. Concurrent
// calls are coalesced into batches (see Store.merge); in an idle process a
// call is sent at once.
func (s *Store) Apply(ctx context.Context, ch cdc.Change) (cdc.Outcome, error) {
	if !s.enter() {
		return cdc.OutcomeFailed, ErrClosed
	}
	defer s.active.Done()
	r, _ := s.requests.Get().(*request)
	if r == nil {
		r = &request{}
	}
	res, ok := s.prepare(ctx, r, ch)
	if ok {
		var err error
		if res, err = s.merge.Do(ctx, r); err != nil {
			// The merged batch still holds r: it is not reused.
			return cdc.OutcomeFailed, err
		}
	}
	*r = request{}
	s.requests.Put(r)
	return res.Outcome, res.Err
}

// enter admits a call unless the store is closed; the caller must call
// s.active.Done.
func (s *Store) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.Add(1)
	return true
}

// sendMerged applies a batch of merged Apply calls' requests with one
// script call and returns their results.
func (s *Store) sendMerged(ctx context.Context, reqs []*request) []cdc.Result {
	s.applyPipelines.Add(1)
	s.applyCalls.Add(int64(len(reqs)))
	s.exec(ctx, reqs)
	results := make([]cdc.Result, len(reqs))
	for i, r := range reqs {
		results[i] = r.res
	}
	_ = s.maybeCheckpoint(s.bg, false) // counted and logged inside
	return results
}

// ApplyBatch applies several changes, in order, in one script call per
// MaxBatch of them, all in one pipeline; results[i] belongs to changes[i].
// Each change is applied atomically, with its own result. A batch of one
// (a push) goes the way of Apply, so concurrent pushes share script calls.
func (s *Store) ApplyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result {
	if len(changes) == 1 {
		outcome, err := s.Apply(ctx, changes[0])
		return []cdc.Result{{Outcome: outcome, Err: err}}
	}
	results := make([]cdc.Result, len(changes))
	if !s.enter() {
		for i := range results {
			results[i] = cdc.Result{Outcome: cdc.OutcomeFailed, Err: ErrClosed}
		}
		return results
	}
	defer s.active.Done()
	var (
		idx  []int
		reqs []*request
		all  = make([]request, len(changes))
	)
	for i, ch := range changes {
		res, ok := s.prepare(ctx, &all[i], ch)
		if !ok {
			results[i] = res
			continue
		}
		idx = append(idx, i)
		reqs = append(reqs, &all[i])
	}
	if len(reqs) > 0 {
		s.applyPipelines.Add(int64((len(reqs) + s.opts.MaxBatch - 1) / s.opts.MaxBatch))
		s.applyCalls.Add(int64(len(reqs)))
		s.exec(ctx, reqs)
		for j, r := range reqs {
			results[idx[j]] = r.res
		}
	}
	s.maybeCheckpoint(ctx, false)
	return results
}

// Close stops accepting changes, finishes the queued ones, waits for
// running truncates and writes the checkpoint. If ctx ends first, the
// background work is cancelled and ctx's error returned.
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
		s.active.Wait() // truncates and drainers start only inside active calls
		s.merge.Wait()
		<-s.tickerDone
		s.truncates.Wait()
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

// FlushCheckpoint writes now the checkpoint of every change applied so far
// (waiting for a write in progress), so a transport that acknowledges in
// bulk (Kafka's offset commits) can make it durable first; nil when
// written or when there was nothing new.
func (s *Store) FlushCheckpoint(ctx context.Context) error { return s.maybeCheckpoint(ctx, true) }

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		RestoreWarnings:  s.ck.Warnings(),
		TruncateErrors:   s.truncateErrors.Load(),
		CheckpointErrors: s.checkpointErrors.Load(),
		ApplyPipelines:   s.applyPipelines.Load(),
		ApplyCalls:       s.applyCalls.Load(),
	}
}

// Warnings returns how many changes looked like a restored database or a
// repointed Debezium (Stats().RestoreWarnings).
func (s *Store) Warnings() int64 { return s.ck.Warnings() }

// prepare checks a change and fills r with it and its arguments of the
// apply script. ok is false, with the result, when the change needs no apply
// script (ignored, truncate, invalid). A truncate raises the table's
// watermark here, synchronously, so its outcome means no older change can
// write any more; its scan then runs in the background. The caller is
// counted in s.active.
func (s *Store) prepare(ctx context.Context, r *request, ch cdc.Change) (res cdc.Result, ok bool) {
	p, res, ok := s.cfg.Plan(ch)
	if !ok {
		return res, false
	}
	if p.Kind == cdc.KindTruncate {
		stale, err := s.raiseWatermark(ctx, ch)
		if err != nil {
			return cdc.Result{Outcome: cdc.OutcomeFailed, Err: err}, false
		}
		s.observe(s.bg, []cdc.Change{ch})
		if stale {
			return cdc.Result{Outcome: cdc.OutcomeStale}, false
		}
		s.startTruncate(ch)
		return cdc.Result{Outcome: cdc.OutcomeApplied}, false
	}
	r.ch, r.refresh, r.ttl = ch, "0", ttlMs(p.TTL)
	if p.Refresh {
		r.refresh = "1"
	}
	switch p.Kind {
	case cdc.KindTombstone:
		r.kind = kindTombstone
	case cdc.KindMarker:
		r.kind = kindMarker
	default:
		r.kind = kindRow
	}
	return cdc.Result{}, true
}

// ttlMs is a TTL as PEXPIRE's argument; 0 means none. A positive TTL never
// rounds down to none.
func ttlMs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// exec applies the requests in order with one apply script call per
// MaxBatch of them, all in one pipeline, and sets each request's result.
func (s *Store) exec(ctx context.Context, reqs []*request) {
	var one [1][]*request // the usual case, without an allocation
	chunks := one[:0]
	for len(reqs) > 0 {
		n := min(len(reqs), s.opts.MaxBatch)
		chunks, reqs = append(chunks, reqs[:n]), reqs[n:]
	}
	cmds := make([]*redis.Cmd, len(chunks))
	send := func(only []int) {
		pipe := s.client.Pipeline()
		for _, i := range only {
			cmds[i] = redis.NewCmd(ctx, s.applyArgs(chunks[i])...)
			cmds[i].SetFirstKeyPos(3) // the watermark hash, for cluster routing
			_ = pipe.Process(ctx, cmds[i])
		}
		_, _ = pipe.Exec(ctx) // errors are on the commands
	}
	all := make([]int, len(chunks))
	for i := range all {
		all[i] = i
	}
	send(all)
	if missing := noScript(cmds); len(missing) > 0 {
		// SCRIPT FLUSH, or a restarted or failed-over server: load, resend.
		if err := applyScript.Load(ctx, s.client).Err(); err != nil {
			for _, i := range missing {
				cmds[i].SetErr(err)
			}
		} else {
			send(missing)
		}
	}
	var done []cdc.Change
	for i, cmd := range cmds {
		vals, err := cmd.Slice()
		if err == nil && len(vals) != len(chunks[i]) {
			err = fmt.Errorf("%d results for %d changes", len(vals), len(chunks[i]))
		}
		for j, r := range chunks[i] {
			if err != nil {
				r.res = cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("redisstore: apply %s: %w", r.ch.Key, err)}
				continue
			}
			r.res = applyResult(r.ch, vals[j])
			if r.res.Err == nil {
				done = append(done, r.ch)
			}
		}
	}
	s.observe(ctx, done)
}

// applyArgs is the EVALSHA command of the apply script for a batch.
func (s *Store) applyArgs(batch []*request) []any {
	args := make([]any, 0, 3+ApplySharedKeys+len(batch)*(1+applyArgs))
	args = append(args, "evalsha", s.applySha, ApplySharedKeys+len(batch), s.truncated, s.checkpoint)
	for _, r := range batch {
		args = append(args, r.ch.Key)
	}
	for _, r := range batch {
		var row []byte
		if r.kind == kindRow {
			row = r.ch.Row
		}
		args = append(args, string(r.ch.Version), r.kind, r.refresh, r.ttl, r.ch.Table, row)
	}
	return args
}

// applyResult reads one change's element of the apply script's answer.
func applyResult(ch cdc.Change, val any) cdc.Result {
	code, ok := val.(int64)
	if !ok {
		return cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("redisstore: apply %s: %v", ch.Key, val)}
	}
	switch code {
	case codeWritten:
		if ch.Op == cdc.OpDelete {
			return cdc.Result{Outcome: cdc.OutcomeDeleted}
		}
		if ch.Untyped {
			return cdc.Result{Outcome: cdc.OutcomeUntyped}
		}
		return cdc.Result{Outcome: cdc.OutcomeApplied}
	case codeStale:
		return cdc.Result{Outcome: cdc.OutcomeStale}
	case codeAbsent:
		return cdc.Result{Outcome: cdc.OutcomeIgnored}
	}
	return cdc.Result{Outcome: cdc.OutcomeFailed, Err: fmt.Errorf("redisstore: apply %s: unexpected script result %d", ch.Key, code)}
}

// noScript returns the indexes of the commands that found their script
// missing on the server.
func noScript(cmds []*redis.Cmd) []int {
	var missing []int
	for i, cmd := range cmds {
		// Err first: HasErrorPrefix allocates even for a nil error.
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	return missing
}

// evalAll runs script once per call in one pipeline; call(i) gives the keys
// and arguments of the i-th. Commands that find the script missing (SCRIPT
// FLUSH, a restarted or failed-over server) are sent again after SCRIPT
// LOAD. A connection failure leaves its error on every command.
func evalAll(ctx context.Context, c redis.UniversalClient, script *redis.Script, n int, call func(i int) ([]string, []any)) []*redis.Cmd {
	cmds := make([]*redis.Cmd, n)
	pipe := c.Pipeline()
	for i := range cmds {
		keys, args := call(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // errors are on the commands
	missing := noScript(cmds)
	if len(missing) == 0 {
		return cmds
	}
	if err := script.Load(ctx, c).Err(); err != nil {
		for _, i := range missing {
			cmds[i].SetErr(err)
		}
		return cmds
	}
	pipe = c.Pipeline()
	for _, i := range missing {
		keys, args := call(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx)
	return cmds
}
