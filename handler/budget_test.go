package handler_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// heldBody is a request body that says when the handler starts reading it
// (by then the push has taken its budget) and gives its bytes only once
// released: a push held in flight.
type heldBody struct {
	r        io.Reader
	started  chan struct{}
	release  chan struct{}
	announce bool
}

func newHeldBody(b []byte) *heldBody {
	return &heldBody{r: bytes.NewReader(b), started: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldBody) Read(p []byte) (int, error) {
	if !h.announce {
		h.announce = true
		close(h.started)
		<-h.release
	}
	return h.r.Read(p)
}

// chunked hides a body's length, as a chunked upload does.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestMemoryBudgetSheds holds one push in flight and checks that pushes the
// remaining budget cannot cover are answered 503 (redelivered by Pub/Sub,
// never acknowledged) whether their length is declared or not, and are
// applied once the first push is done.
func TestMemoryBudgetSheds(t *testing.T) {
	c, prefix := testredis.Shared(t)
	now := time.Now().UnixMilli()
	first := push{data: event("c", 1, strings.Repeat("a", 40<<10)+"@example.com", 10, now), id: "1",
		publishTime: publishTime, orderingKey: keyOf(1)}.wrapped()
	second := push{data: event("c", 2, strings.Repeat("b", 40<<10)+"@example.com", 20, now), id: "2",
		publishTime: publishTime, orderingKey: keyOf(2)}.wrapped()
	// Room for the first push and the fixed part of another, plus a third
	// of the second's body: not for the second.
	r := newRig(t, c, prefix, "", withBudget(handler.PushCost(int64(len(first)))+handler.PushCost(0)+int64(len(second))))

	held := newHeldBody(first)
	req := httptest.NewRequest(http.MethodPost, "/", held)
	req.ContentLength = int64(len(first))
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	<-held.started

	assert.Equal(t, http.StatusServiceUnavailable, r.do(http.MethodPost, second, nil).Code, "declared length over the budget")
	assert.Equal(t, http.StatusServiceUnavailable, serveChunked(r, second), "undeclared length, cut off while reading")
	assert.Equal(t, uint64(2), r.h.Shed())
	assert.Empty(t, r.record(t, "inventory.customers", "2"), "a shed push is not applied")

	close(held.release)
	require.Equal(t, http.StatusNoContent, <-done)
	assert.NotEmpty(t, r.record(t, "inventory.customers", "1")["d"])

	require.Equal(t, http.StatusNoContent, serveChunked(r, second), "the budget was given back")
	assert.NotEmpty(t, r.record(t, "inventory.customers", "2")["d"])
	require.Equal(t, http.StatusNoContent, r.do(http.MethodPost, second, nil).Code)
	assert.Empty(t, r.rejected(t))
	assert.Equal(t, uint64(2), r.h.Shed())
}

// TestMemoryBudgetAdmitsALoneLargePush checks that a push larger than the
// whole budget is served when nothing else is in flight: no message is too
// large to get through.
func TestMemoryBudgetAdmitsALoneLargePush(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "", withBudget(1))
	p := push{data: event("c", 3, strings.Repeat("c", 1<<20)+"@example.com", 30, time.Now().UnixMilli()), id: "3",
		publishTime: publishTime, orderingKey: keyOf(3)}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(p))
	require.Equal(t, http.StatusNoContent, serveChunked(r, p.wrapped()))
	assert.NotEmpty(t, r.record(t, "inventory.customers", "3")["d"])
	assert.Zero(t, r.h.Shed())
}

func serveChunked(r *rig, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/", chunked{bytes.NewReader(body)})
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec.Code
}
