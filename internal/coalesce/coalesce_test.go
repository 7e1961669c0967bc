package coalesce

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// recorder is a batch function that records its batches and answers each
// item with item*10. If gate is set, the first batch waits for it to close.
type recorder struct {
	gate    chan struct{}
	started chan struct{} // closed when the first batch starts

	mu      sync.Mutex // protects batches and errs
	batches [][]int
	errs    []error // each batch's ctx.Err() once it ran
}

func newRecorder(gated bool) *recorder {
	r := &recorder{started: make(chan struct{})}
	if gated {
		r.gate = make(chan struct{})
	}
	return r
}

func (r *recorder) run(ctx context.Context, items []int) []int {
	r.mu.Lock()
	first := len(r.batches) == 0
	r.batches = append(r.batches, slices.Clone(items))
	r.mu.Unlock()
	if first {
		close(r.started)
		if r.gate != nil {
			<-r.gate
		}
	}
	r.mu.Lock()
	r.errs = append(r.errs, ctx.Err())
	r.mu.Unlock()
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it * 10
	}
	return out
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []int
	for _, b := range r.batches {
		n = append(n, len(b))
	}
	return n
}

// holdFirstYield makes the first yield (the first caller's) return only once
// n calls have queued; it returns a channel closed when that yield starts.
func holdFirstYield[T, R any](b *Batcher[T, R], n int) (leading chan struct{}) {
	leading = make(chan struct{})
	queued := make(chan struct{}, 1000)
	b.queued = func() { queued <- struct{}{} }
	var once sync.Once
	b.yield = func() {
		once.Do(func() {
			close(leading)
			for range n {
				<-queued
			}
		})
	}
	return leading
}

type result struct {
	item, got int
	err       error
}

// callAll calls Do for each item on a goroutine of its own and returns a
// channel of their results.
func callAll(ctx context.Context, b *Batcher[int, int], items ...int) <-chan result {
	out := make(chan result, len(items))
	for _, it := range items {
		go func() {
			got, err := b.Do(ctx, it)
			out <- result{it, got, err}
		}()
	}
	return out
}

func collect(t *testing.T, ch <-chan result, n int) {
	t.Helper()
	for range n {
		r := <-ch
		if r.err != nil || r.got != r.item*10 {
			t.Errorf("Do(%d) = %d, %v; want %d", r.item, r.got, r.err, r.item*10)
		}
	}
}

// A lone call runs at once, alone, with the caller's own context (its
// cancellation reaches the batch function).
func TestALoneCallRunsAloneWithItsContext(t *testing.T) {
	rec := newRecorder(false)
	b := New(context.Background(), 8, rec.run)
	got, err := b.Do(context.Background(), 7)
	if err != nil || got != 70 {
		t.Fatalf("Do(7) = %d, %v", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := b.Do(ctx, 8); err != nil || got != 80 {
		t.Fatalf("Do(8) with a cancelled context = %d, %v; want the batch function's answer", got, err)
	}
	b.Wait()
	if !slices.Equal(rec.sizes(), []int{1, 1}) || !errors.Is(rec.errs[1], context.Canceled) || rec.errs[0] != nil {
		t.Fatalf("batches %v, their context errors %v", rec.batches, rec.errs)
	}
}

// leadAndWait has a first call (item 0) lead while n more (items 1..n)
// queue during its yield, and checks that each gets its own result.
func leadAndWait(t *testing.T, limit, n int) *recorder {
	t.Helper()
	rec := newRecorder(false)
	b := New(context.Background(), limit, rec.run)
	leading := holdFirstYield(b, n)
	first := callAll(context.Background(), b, 0)
	<-leading
	rest := make([]int, n)
	for i := range rest {
		rest[i] = i + 1
	}
	queued := callAll(context.Background(), b, rest...)
	collect(t, first, 1)
	collect(t, queued, n)
	b.Wait()
	return rec
}

// Calls that arrive while the first caller yields go in its batch, one call
// of the batch function, and each gets its own result.
func TestCallsQueuedDuringTheYieldShareOneBatch(t *testing.T) {
	rec := leadAndWait(t, 100, 5)
	if len(rec.batches) != 1 || rec.batches[0][0] != 0 {
		t.Fatalf("batches %v: want one, led by the first call", rec.batches)
	}
	got := slices.Sorted(slices.Values(rec.batches[0]))
	if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("batch %v", rec.batches[0])
	}
	if rec.errs[0] != nil {
		t.Fatalf("a merged batch's context: %v", rec.errs[0])
	}
}

// No batch exceeds the limit: the first caller takes limit-1 queued calls,
// the drainer the rest, limit at a time.
func TestTheLimitSplitsTheQueue(t *testing.T) {
	rec := leadAndWait(t, 4, 10)
	if got := rec.sizes(); !slices.Equal(got, []int{4, 4, 3}) {
		t.Fatalf("batch sizes %v, want [4 4 3]", got)
	}
}

// A caller that gives up returns its context's error at once, whether its
// item is in a running batch or still queued; the batch is not cancelled,
// by it or by the leading caller giving up, and the queued item still runs.
func TestAWaiterGivingUpStillHasItsItemRun(t *testing.T) {
	rec := newRecorder(true)
	bg := context.Background()
	b := New(bg, 10, rec.run)
	leading := holdFirstYield(b, 1)
	leadCtx, cancelLead := context.WithCancel(bg)
	riderCtx, cancelRider := context.WithCancel(bg)
	lateCtx, cancelLate := context.WithCancel(bg)
	lead := callAll(leadCtx, b, 1)
	<-leading
	rider := callAll(riderCtx, b, 2)
	<-rec.started // the batch [1 2] runs, held by the gate

	queued := make(chan struct{})
	b.queued = func() { close(queued) }
	late := callAll(lateCtx, b, 3)
	<-queued
	cancelRider()
	cancelLate()
	cancelLead()
	for _, ch := range []<-chan result{rider, late} {
		if r := <-ch; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Do(%d) after giving up = %d, %v; want context.Canceled", r.item, r.got, r.err)
		}
	}
	close(rec.gate)
	collect(t, lead, 1) // it led the batch: it has the answer
	b.Wait()
	if len(rec.batches) != 2 || !slices.Equal(rec.batches[1], []int{3}) {
		t.Fatalf("batches %v: want [1 2] then [3]", rec.batches)
	}
	for i, err := range rec.errs {
		if err != nil {
			t.Fatalf("batch %v ran with a cancelled context: %v", rec.batches[i], err)
		}
	}
}

// Under real scheduling, every call gets its own item's result, every item
// runs exactly once, and no batch exceeds the limit.
func TestConcurrentCallsEachGetTheirOwnResult(t *testing.T) {
	const workers, per, limit = 8, 500, 16
	var mu sync.Mutex
	seen := map[int]int{}
	b := New(context.Background(), limit, func(_ context.Context, items []int) []int {
		mu.Lock()
		defer mu.Unlock()
		if len(items) > limit {
			t.Errorf("a batch of %d", len(items))
		}
		out := make([]int, len(items))
		for i, it := range items {
			seen[it]++
			out[i] = -it
		}
		return out
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				it := w*per + i
				if got, err := b.Do(context.Background(), it); err != nil || got != -it {
					t.Errorf("Do(%d) = %d, %v", it, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.Wait()
	if len(seen) != workers*per {
		t.Fatalf("%d items ran, want %d", len(seen), workers*per)
	}
	for it, n := range seen {
		if n != 1 {
			t.Fatalf("item %d ran %d times", it, n)
		}
	}
}
