package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// The open loop starts every read on schedule whatever the answers do: here
// no read answers until all have started, which a closed loop (or a pool
// that waits for an answer before the next start) never reaches.
func TestOpenLoopStartsReadsWithoutWaitingForAnswers(t *testing.T) {
	const n = 50
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	var started atomic.Int64
	all := make(chan struct{})
	l, err := openLoop(context.Background(), 100_000, ids, func(ctx context.Context, id int) error {
		if started.Add(1) == n {
			close(all)
		}
		<-all
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.all) != n {
		t.Fatalf("%d latencies, want %d", len(l.all), n)
	}
}

func TestOpenLoopStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	_, err := openLoop(context.Background(), 100_000, []int{1, 2, 3}, func(ctx context.Context, id int) error {
		if id == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
