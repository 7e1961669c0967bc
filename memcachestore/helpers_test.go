package memcachestore

import (
	"context"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
)

// newClient returns a client of addrs, closed when the test ends.
func newClient(tb testing.TB, addrs ...string) *Client {
	tb.Helper()
	c, err := NewClient(addrs, ClientOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newTestStore builds a Store and closes it at the end of the test.
func newTestStore(tb testing.TB, c *Client, cfg *cdc.Config, opts Options) *Store {
	tb.Helper()
	s := New(c, cfg, opts)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// backend is the memcached store for the shared tests of internal/storetest.
type backend struct {
	c      *Client
	prefix string
}

// privateBackend is a backend on a private memcached.
func privateBackend(t *testing.T) backend {
	srv := testmemcache.Start(t)
	return backend{c: newClient(t, srv.Addr()), prefix: "test:"}
}

func (b backend) Prefix() string { return b.prefix }

func (b backend) Open(tb testing.TB, cfg *cdc.Config) storetest.Store {
	return newTestStore(tb, b.c, cfg, Options{})
}

// Seed writes the record the Redis fields describe; a row without a
// version has no memcached form.
func (b backend) Seed(tb testing.TB, key string, rec map[string]string, ttl time.Duration) bool {
	tb.Helper()
	r := Record{Version: cdc.Version(rec["v"])}
	switch {
	case rec["l"] != "":
		r.Kind, r.Lease = KindLease, rec["l"]
	case r.Version == "":
		return false
	case rec["d"] != "":
		r.Kind, r.Row = KindRow, []byte(rec["d"])
	case rec["t"] == "1":
		r.Kind = KindTombstone
	default:
		r.Kind = KindMarker
	}
	set := &Op{Key: Key(b.prefix, key), Set: true, Value: r.Append(nil), Exptime: exptime(ttl, time.Now())}
	b.c.Do(context.Background(), []*Op{set})
	if set.Err != nil || set.Status != StatusStored {
		tb.Fatalf("seed %s: %v %v", key, set.Status, set.Err)
	}
	return true
}

// Get reads a record in the Redis fields' form, with its TTL.
func (b backend) Get(tb testing.TB, key string) (map[string]string, time.Duration) {
	tb.Helper()
	get := &Op{Key: Key(b.prefix, key)}
	b.c.Do(context.Background(), []*Op{get})
	if get.Err != nil {
		tb.Fatal(get.Err)
	}
	if get.Status != StatusHit {
		return nil, 0
	}
	r, err := ParseRecord(get.Value)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]string{}
	if r.Version != "" {
		out["v"] = string(r.Version)
	}
	switch r.Kind {
	case KindRow:
		out["d"] = string(r.Row)
	case KindTombstone:
		out["t"] = "1"
	case KindLease:
		out["l"] = r.Lease
	}
	return out, time.Duration(max(get.TTL, 0)) * time.Second
}
