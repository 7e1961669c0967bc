package localrun

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpark"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// TestChaosConvergenceMemcached is the convergence test on memcached,
// through push delivery (pushChaos: duplicates, delays, reordering, the
// function killed and restarted mid-stream) with 1% malformed messages,
// parked in a reject topic (REJECT_TOPIC) as memcached has no stream:
//
//   - the cache converges on the generator's state with no missing, stale
//     or resurrected key, and the parked messages are exactly the
//     malformed ones;
//   - then memcached is killed and restarted and the stream goes on: a
//     restart loses every record written before it (memcached keeps
//     nothing), which VerifyRecords finds as missing rows, and a re-snapshot
//     (every live row read again, op r, as Debezium sends when asked to
//     snapshot) repairs it.
//
// Unlike the Redis one, this test does not crash the cache while it is
// being written to in the first part: on memcached that is the second
// part's failure, a total loss, not a pause.
func TestChaosConvergenceMemcached(t *testing.T) {
	const changes, keys = 4000, 300
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mc := testmemcache.Start(t)
	client, err := memcachestore.NewClient([]string{mc.Addr()}, memcachestore.ClientOptions{})
	require.NoError(t, err)
	defer client.Close()

	// The reject topic, on a Pub/Sub fake of its own: every message there
	// was parked.
	rejects, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer rejects.Close()
	rps, err := pushbridge.DialPubSub(ctx, "local", rejects.Addr)
	require.NoError(t, err)
	defer rps.Close()
	require.NoError(t, rps.CreateTopic(ctx, RejectTopic))

	rig := &chaosRig{ctx: ctx, dir: t.TempDir(), prefix: "chaos:", gen: changegen.New(changegen.Options{Seed: 42, Keys: keys})}
	configPath := filepath.Join(rig.dir, "cache.yaml")
	require.NoError(t, os.WriteFile(configPath, rig.gen.CacheConfig(rig.prefix), 0o644))
	rig.env = []string{"CACHE_BACKEND=memcached", "MEMCACHE_ADDRS=" + mc.Addr(), "CACHE_CONFIG=" + configPath, "SUMMARY_INTERVAL=1h",
		"PUBSUB_EMULATOR_HOST=" + rejects.Addr, "REJECT_TOPIC=" + rps.TopicName(RejectTopic)}
	rig.log, err = os.Create(filepath.Join(rig.dir, "process.log"))
	require.NoError(t, err)
	defer rig.log.Close()
	defer func() {
		if t.Failed() {
			logTail(t, rig.log.Name())
		}
	}()
	d := pushChaos(t, rig)

	// produce publishes n changes (Malformed: their share of malformed
	// ones), calling at, if set, once half are out; then waits for the drain.
	produce := func(n int, malformed float64, at func()) Produced {
		half, once := make(chan struct{}), sync.Once{}
		opts := ProduceOptions{Events: n, Malformed: malformed, MaxBacklog: 300, Published: func(p int) {
			if p >= n/2 {
				once.Do(func() { close(half) })
			}
		}}
		done := make(chan struct{})
		var p Produced
		var err error
		go func() {
			defer close(done)
			p, err = Produce(ctx, rig.gen, d.publisher, d.pending, opts)
		}()
		if at != nil {
			select {
			case <-half:
				at()
			case <-done:
				t.Fatal("the producer ended before half its changes were out")
			}
		}
		<-done
		require.NoError(t, err)
		require.Equal(t, n, p.Changes)
		require.Eventually(t, d.idle, 90*time.Second, 10*time.Millisecond, "backlog never drained: %d pending", d.pending())
		return p
	}
	verify := func() Verdict {
		expected := rig.gen.Expected()
		v, err := VerifyRecords(ctx, MemcachedRecords(client, rig.prefix), rig.prefix, expected)
		require.NoError(t, err)
		assert.Equal(t, len(expected), v.Checked)
		return v
	}

	// (a) Disorder and a process crash: convergence, every malformed message parked.
	p := produce(changes, 0.01, d.crash)
	parked := map[string]bool{}
	for _, m := range rejects.Messages() {
		parked[m.Attributes[pubsubpark.AttrRejectMessageID]] = true
	}
	assert.Positive(t, p.Malformed)
	assert.Equal(t, p.MalformedIDs, parked, "the parked messages are exactly the malformed ones")
	d.account(p, len(rejects.Messages()))
	v := verify()
	require.True(t, v.OK(), "missing=%d stale=%d resurrected=%d: %+v", v.Missing, v.Stale, v.Resurrected, v.Mismatches)

	// (b) memcached restarts: everything written before is gone, and the
	// changes after it only bring back the rows they touch.
	mc.Kill()
	mc.Restart()
	produce(changes/4, 0, nil)
	v = verify()
	t.Logf("after the memcached restart: checked=%d missing=%d stale=%d resurrected=%d", v.Checked, v.Missing, v.Stale, v.Resurrected)
	assert.Positive(t, v.Missing, "verify finds the rows the restart lost")
	assert.Zero(t, v.Stale+v.Resurrected, "a loss is rows missing, never wrong ones")

	// A re-snapshot repairs it.
	rig.gen.Resnapshot()
	snapshot := 0
	for _, e := range rig.gen.Expected() {
		if !e.Deleted {
			snapshot++
		}
	}
	produce(snapshot, 0, nil)
	assert.False(t, rig.gen.Snapshotting())
	v = verify()
	assert.True(t, v.OK(), "after the re-snapshot: missing=%d stale=%d resurrected=%d: %+v", v.Missing, v.Stale, v.Resurrected, v.Mismatches)
	require.NoError(t, d.stop())
}
