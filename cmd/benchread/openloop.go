package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cacheaside"
)

// openLatencies are an open-loop phase's read latencies, sorted, and how
// late the reads started against their schedule.
type openLatencies struct {
	latencies
	lateP99 time.Duration // p99 of start - scheduled start
}

// openLoop starts read(id) for each of ids at rate a second, read i
// scheduled at start + i/rate, each in its own goroutine so a slow answer
// never delays the next start (no coordinated omission). A read's latency
// runs from its scheduled start, so a harness that falls behind its
// schedule (the machine's cores are busy) shows up in the figures rather
// than being hidden; lateP99 says how much of it that was. The first error
// stops the phase.
func openLoop(ctx context.Context, rate float64, ids []int, read func(context.Context, int) error) (openLatencies, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards firstErr
		firstErr error
	)
	lat := make([]time.Duration, len(ids))
	late := make([]time.Duration, len(ids))
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i, id := range ids {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			late[i] = time.Since(due)
			err := read(ctx, id)
			lat[i] = time.Since(due)
			if err != nil && !errors.Is(err, cacheaside.ErrNotFound) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("read %d: %w", id, err)
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return openLatencies{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return openLatencies{}, err
	}
	l := openLatencies{latencies: latencies{all: lat, elapsed: time.Since(start)}}
	slices.Sort(l.all)
	slices.Sort(late)
	l.lateP99 = latencies{all: late}.p(0.99)
	return l, nil
}
