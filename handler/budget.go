package handler

import (
	"errors"
	"io"
	"sync"
)

// DefaultMemoryBudget is the default of Config.MemoryBudget: 128 MiB, a
// quarter of a 512 MiB Cloud Run instance, because the Go collector
// (GOGC=100) lets the heap grow to about twice what is live.
const DefaultMemoryBudget = 128 << 20

// Per push, what a push of n body bytes is taken to hold at its peak:
// BenchmarkHandlerLarge measures 2.7 bytes allocated per body byte for a
// wrapped 5.6 MB push (the body, its decoded data, the row's canonical
// JSON), and the fixed part covers the connection's buffers and the
// goroutine.
const (
	pushFixedBytes   = 16 << 10
	pushBytesPerByte = 3
)

// pushCost is what a push of n body bytes takes from the budget.
func pushCost(n int64) int64 { return pushFixedBytes + pushBytesPerByte*n }

// budget bounds the bytes the pushes being served hold at once. A push that
// does not fit is refused (503, and Pub/Sub redelivers it with backoff)
// rather than waited for, so memory never grows with the number of requests
// Cloud Run lets in. When nothing is in flight any push fits, so the
// largest message is served even when it alone exceeds the budget.
type budget struct {
	max  int64
	mu   sync.Mutex
	used int64 // protected by mu
}

// take reserves n more bytes for a push that holds own bytes already; false
// means the budget is spent and nothing was taken. A push alone in flight
// always gets what it asks for.
func (b *budget) take(own, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used > own && b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// give returns what a push holds.
func (b *budget) give(pb *pushBuffers) {
	b.mu.Lock()
	b.used -= pb.held
	b.mu.Unlock()
	pb.held = 0
	pb.metered = meteredBody{}
}

// errBudget ends the reading of a body whose length was not declared once
// the budget cannot cover what has arrived.
var errBudget = errors.New("push memory budget spent")

// meteredBody takes budget for a body of undeclared length (chunked) as it
// arrives; *held counts what it took, for the push to give back.
type meteredBody struct {
	r    io.Reader
	b    *budget
	held *int64
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		cost := pushBytesPerByte * int64(n)
		if !m.b.take(*m.held, cost) {
			return n, errBudget
		}
		*m.held += cost
	}
	return n, err
}
