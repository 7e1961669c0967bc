// Package coalesce merges concurrent single-item calls into batches, for a
// store whose cost is per round trip rather than per item: behind the push
// function every request carries one change, and many requests run at once.
//
// Batching is "send when idle", never "wait for more": a call that finds no
// batch in flight yields the CPU once (so callers that are runnable now can
// queue behind it), then runs its item with whatever queued; calls arriving
// while a batch runs queue, and when it ends a drainer goroutine runs the
// queue, up to the limit per batch, until it is empty. In an idle process a
// lone call runs at once, alone, with its own context.
package coalesce

import (
	"context"
	"runtime"
	"sync"
)

// Batcher runs items through a batch function, merging concurrent calls of
// Do. It is safe for concurrent use.
type Batcher[T, R any] struct {
	run   func(ctx context.Context, items []T) []R
	limit int
	bg    context.Context

	// yield is where a call lets runnable callers queue first:
	// runtime.Gosched; tests replace it to decide who has queued.
	yield func()
	// queued, when set, is called after a call joins the queue (tests).
	queued func()

	// mu guards inflight and queue. inflight is true from the moment a call
	// decides to run a batch until the queue is found empty after it.
	mu       sync.Mutex
	inflight bool
	queue    []*call[T, R]

	// drainers counts running drainer goroutines, for Wait.
	drainers sync.WaitGroup
	// calls recycles calls with their channels: a push path makes one per
	// request.
	calls sync.Pool
}

// call is one Do on its way: its item and where its result goes.
type call[T, R any] struct {
	item T
	res  R
	done chan R // buffered: a batch never waits for a caller that gave up
}

// New returns a Batcher that runs at most limit items (at least 1) per call
// of run. run must return one result per item, in order; it gets the
// caller's context when it runs that caller's item alone, and otherwise a
// context that no caller's giving up cancels: bg for the drainer, the first
// caller's without its cancellation for the batch that caller leads.
func New[T, R any](bg context.Context, limit int, run func(ctx context.Context, items []T) []R) *Batcher[T, R] {
	return &Batcher[T, R]{run: run, limit: max(limit, 1), bg: bg, yield: runtime.Gosched}
}

// Do runs item, merged with concurrent calls, and returns its result. If
// ctx ends while the item waits in the queue, Do returns ctx's error at
// once; the item still runs later (it is not taken back, so the batch
// function must tolerate work nobody waits for).
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	c, _ := b.calls.Get().(*call[T, R])
	if c == nil {
		c = &call[T, R]{done: make(chan R, 1)}
	}
	c.item = item
	b.mu.Lock()
	if b.inflight {
		b.queue = append(b.queue, c)
		b.mu.Unlock()
		if b.queued != nil {
			b.queued()
		}
		select {
		case r := <-c.done:
			b.recycle(c)
			return r, nil
		case <-ctx.Done():
			// A batch will still send to c.done: c is not reused.
			var zero R
			return zero, ctx.Err()
		}
	}
	b.inflight = true
	b.mu.Unlock()
	b.yield()
	batch := b.take(c, b.limit-1)
	if len(batch) == 1 {
		c.res = b.run(ctx, []T{item})[0]
	} else {
		// Others' items ride along: this caller giving up must not cancel them.
		b.runBatch(context.WithoutCancel(ctx), batch, true)
	}
	b.handOff()
	r := c.res
	b.recycle(c)
	return r, nil
}

// recycle returns a call whose result has been taken to the pool, dropping
// its references.
func (b *Batcher[T, R]) recycle(c *call[T, R]) {
	*c = call[T, R]{done: c.done}
	b.calls.Put(c)
}

// take returns first and up to n queued calls, removing those from the queue.
func (b *Batcher[T, R]) take(first *call[T, R], n int) []*call[T, R] {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.queue))
	batch := make([]*call[T, R], 0, n+1)
	if first != nil {
		batch = append(batch, first)
	}
	batch = append(batch, b.queue[:n]...)
	if b.queue = b.queue[n:]; len(b.queue) == 0 {
		b.queue = nil
	}
	return batch
}

// runBatch runs the calls' items as one batch and gives each queued call its
// result; a leading call (batch[0] when led) reads its own from res.
func (b *Batcher[T, R]) runBatch(ctx context.Context, batch []*call[T, R], led bool) {
	items := make([]T, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	results := b.run(ctx, items)
	for i, c := range batch {
		if led && i == 0 {
			c.res = results[i]
			continue
		}
		c.done <- results[i]
	}
}

// handOff ends a batch run by a caller: calls that queued meanwhile go to a
// drainer goroutine, so the caller returns at once.
func (b *Batcher[T, R]) handOff() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.inflight = false
		return
	}
	b.drainers.Add(1)
	go b.drain()
}

// drain runs the queue, a batch at a time, until it is empty.
func (b *Batcher[T, R]) drain() {
	defer b.drainers.Done()
	for {
		// As in Do: let runnable callers join the batch first.
		b.yield()
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inflight = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.runBatch(b.bg, b.take(nil, b.limit), false)
	}
}

// Wait waits until the drainer has run every queued item. Call it only
// once every Do has returned and no new one can start (the owner is
// closed): a Do in progress may still start a drainer.
func (b *Batcher[T, R]) Wait() { b.drainers.Wait() }
