package main

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
)

// TestRunOnMemcached runs the local pipeline on a private memcached through
// each delivery, with malformed messages: the run first deletes every item
// it can write (here planted newer-looking rows at every key, which would
// otherwise win over every change), parks each malformed message in the
// fake's reject topic (the summary's rejected), and verify and status find
// the finished run's memcached by themselves. Restarted, memcached keeps
// nothing, and verify says so.
func TestRunOnMemcached(t *testing.T) {
	for _, delivery := range deliveries {
		t.Run(delivery, func(t *testing.T) { testRunOnMemcached(t, delivery) })
	}
}

func testRunOnMemcached(t *testing.T, delivery string) {
	ctx := context.Background()
	mcd := testmemcache.Start(t)
	mc, err := memcachestore.NewClient([]string{mcd.Addr()}, memcachestore.ClientOptions{})
	require.NoError(t, err)
	defer mc.Close()
	const prefix, events, keys = "mrun:", 300, 40
	gen := changegen.New(changegen.FormatCompact.Apply(changegen.Options{Seed: 1, Keys: keys}))
	newest := cdc.Version("9999999999999999999999999999999999999999")
	var planted []*memcachestore.Op
	for _, k := range gen.AllKeys() {
		rec := memcachestore.Record{Kind: memcachestore.KindRow, Version: newest, Row: []byte(`{"planted":1}`)}
		planted = append(planted, &memcachestore.Op{Key: memcachestore.Key(prefix, prefix+k), Set: true, Value: rec.Append(nil)})
	}
	mc.Do(ctx, planted)
	for _, op := range planted {
		require.NoError(t, op.Err)
		require.Equal(t, memcachestore.StatusStored, op.Status)
	}

	env := map[string]string{"CACHECTL_STATE_DIR": t.TempDir()}
	expected := filepath.Join(t.TempDir(), "expected.jsonl")
	args := append([]string{"run", "-cache", "memcached", "-memcache", mcd.Addr(), "-prefix", prefix,
		"-events", strconv.Itoa(events), "-keys", strconv.Itoa(keys), "-malformed", "0.05", "-expected", expected},
		deliveryFlags(t, delivery)...)
	out, errOut, err := runCmd(t, env, args...)
	require.NoError(t, err, "%s\n%s", out, errOut)
	assert.Contains(t, out, "cache memcached "+mcd.Addr()+`, prefix "mrun:" (cleared `+strconv.Itoa(len(planted))+" keys)")
	assert.Contains(t, out, "key: and types: in the cache config (the column registry lives in Redis")
	published, accounted, pending := summaryCounts(t, out)
	assert.Equal(t, published, accounted, "the summary adds up")
	assert.Zero(t, pending)
	m := summaryLine.FindStringSubmatch(out)
	rejected, _ := strconv.Atoi(m[5])
	assert.Positive(t, rejected)
	assert.Equal(t, published-events, rejected, "every malformed message is parked, and only those")

	vout, verr, err := runCmd(t, env, "verify")
	require.NoError(t, err, "%s%s", vout, verr)
	verified(t, vout, "(against "+expected+", written at the end of the local run)")

	sout, serr, err := runCmd(t, env, "status")
	require.NoError(t, err, serr)
	assert.Contains(t, sout, "  cache     memcached "+mcd.Addr()+` prefix "mrun:"`)
	assert.Regexp(t, `(?m)^server    dbserver1\n  binlog    file \d+ \(\.\d{6}\), pos \d+, row \d+$`, sout)
	assert.Regexp(t, `(?m)^truncated inventory\.customers (never|at \d{40} )`, sout)
	assert.Contains(t, sout, "parked    not in memcached (it has no stream)")

	if delivery != "push" {
		return
	}
	mcd.Restart()
	vout, _, err = runCmd(t, env, "verify")
	require.True(t, errors.Is(err, errMismatch), "%v\n%s", err, vout)
	miss := regexp.MustCompile(`(?m)^verify: checked=(\d+) ok=\d+ missing=([1-9]\d*) stale=0 resurrected=0 `).FindStringSubmatch(vout)
	require.NotNil(t, miss, "after a restart every row is missing:\n%s", vout)
}
