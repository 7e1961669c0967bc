package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

const waitFor = 20 * time.Second

func id(topic string, p int32, off int64) string { return fmt.Sprintf("%s/%d/%d", topic, p, off) }

// guardCommits fails the test when any commit covers a record that is
// neither finished by one of procs nor a tombstone.
func guardCommits(t *testing.T, fk *fakeKafka, tombstones map[string]bool, procs ...*scripted) {
	fk.mu.Lock()
	defer fk.mu.Unlock()
	fk.check = func(topic string, p int32, off int64) {
		for o := int64(0); o < off; o++ {
			rid := id(topic, p, o)
			if tombstones[rid] {
				continue
			}
			ok := false
			for _, pr := range procs {
				ok = ok || pr.isFinished(rid)
			}
			if !ok {
				t.Errorf("offset %d committed on %s/%d past unfinished record %s", off, topic, p, rid)
				return
			}
		}
	}
}

func values(n int, tombstones ...int) [][]byte {
	vs := make([][]byte, n)
	for i := range vs {
		vs[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
	}
	for _, i := range tombstones {
		vs[i] = nil
	}
	return vs
}

// A record the core keeps answering Retry holds its partition's commit at
// its own offset: the records before it (a tombstone among them, which never
// reaches the core) are committed, the ones after it are not, and only the
// unfinished record is handed to the core again.
func TestCommitStopsAtUnfinishedRecord(t *testing.T) {
	const topic = "srv.inventory.customers"
	fk := newFakeKafka(t, 1, topic)
	prod := fk.client(t)
	produce(t, prod, topic, 0, values(10, 3)...)
	blocked := id(topic, 0, 5)
	proc := newScripted(func(m pipeline.Message) pipeline.Verdict {
		if m.ID == blocked {
			return pipeline.Retry
		}
		return pipeline.Ack
	})
	guardCommits(t, fk, map[string]bool{id(topic, 0, 3): true}, proc)

	src, _ := startSource(t, Config{Brokers: fk.addrs, Topics: []string{topic}, Group: "g1"}, proc)
	require.Eventually(t, func() bool { return committed(t, prod, "g1", topic, 0) == 5 }, waitFor, 5*time.Millisecond)
	require.Eventually(t, func() bool { return src.Stats().Retries >= 3 }, waitFor, time.Millisecond)
	assert.EqualValues(t, 5, committed(t, prod, "g1", topic, 0), "committed past the unfinished record")

	proc.setVerdict(func(pipeline.Message) pipeline.Verdict { return pipeline.Ack })
	require.Eventually(t, func() bool { return committed(t, prod, "g1", topic, 0) == 10 }, waitFor, 5*time.Millisecond)

	proc.mu.Lock()
	defer proc.mu.Unlock()
	assert.Zero(t, proc.seen[id(topic, 0, 3)], "a tombstone reached the core")
	for o := int64(6); o < 10; o++ {
		assert.Equal(t, 1, proc.seen[id(topic, 0, o)], "finished record %d handed to the core again", o)
	}
	assert.Greater(t, proc.seen[blocked], 3)
	st := src.Stats()
	assert.EqualValues(t, 1, st.Tombstones)
	assert.EqualValues(t, 10, st.Records)
	assert.Equal(t, []LagSummary{{Message: LagMessage, PartitionLag: PartitionLag{
		Topic: topic, Partition: 0, HighWatermark: 10, Finished: 10, Lag: 0}}}, src.LagSummaries())
	var prom strings.Builder
	require.NoError(t, src.WritePrometheus(&prom))
	assert.Contains(t, prom.String(), `cdc_kafka_partition_lag{topic="srv.inventory.customers",partition="0"} 0`)
	assert.Contains(t, prom.String(), "cdc_kafka_tombstones_total 1\n")
}

// Messages carry the record's key, headers as attributes, timestamp, the
// "topic/partition/offset" id, and the attempt number on retries.
func TestMessageFields(t *testing.T) {
	const topic = "srv.db.t"
	fk := newFakeKafka(t, 1, topic)
	prod := fk.client(t)
	rec := produce(t, prod, topic, 0, []byte(`{"x":1}`))[0]
	_ = rec
	var mu sync.Mutex
	var got []pipeline.Message
	proc := newScripted(func(m pipeline.Message) pipeline.Verdict {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) == 1 {
			return pipeline.Retry
		}
		return pipeline.Parked
	})
	startSource(t, Config{Brokers: fk.addrs, Topics: []string{topic}, Group: "g"}, proc)
	require.Eventually(t, func() bool { return committed(t, prod, "g", topic, 0) == 1 }, waitFor, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	assert.Equal(t, `{"x":1}`, string(got[0].Data))
	assert.Equal(t, `{"id":0}`, string(got[0].Key))
	assert.Equal(t, id(topic, 0, 0), got[0].ID)
	assert.False(t, got[0].PublishTime.IsZero())
	assert.Equal(t, 1, got[0].Attempt)
	assert.Equal(t, 2, got[1].Attempt)
}

// A rebalance while the first member keeps retrying a record: the partition
// that moves is finished by the second member from the committed offset (a
// record the first member held in flight is abandoned, not committed past),
// and when the first member stops, its other partition moves too.
//
// The records are produced in two rounds because a poll may return one
// partition's records before the other's: had the stuck records been there
// from the start, the first member could block on one partition before ever
// fetching the other, and nothing here would be about rebalancing.
func TestRebalanceAbandonsRevokedPartitions(t *testing.T) {
	const topic = "srv.db.orders"
	fk := newFakeKafka(t, 2, topic)
	prod := fk.client(t)
	all := values(5)
	for p := int32(0); p < 2; p++ {
		produce(t, prod, topic, p, all[:2]...)
	}
	stuck := func(m pipeline.Message) pipeline.Verdict {
		if m.ID == id(topic, 0, 2) || m.ID == id(topic, 1, 2) {
			return pipeline.Retry
		}
		return pipeline.Ack
	}
	a := newScripted(stuck)
	b := newScripted(func(pipeline.Message) pipeline.Verdict { return pipeline.Ack })
	guardCommits(t, fk, nil, a, b)
	cfg := Config{Brokers: fk.addrs, Topics: []string{topic}, Group: "g2"}

	srcA, stopA := startSource(t, cfg, a)
	for p := int32(0); p < 2; p++ {
		require.Eventually(t, func() bool { return committed(t, prod, "g2", topic, p) == 2 }, waitFor, 5*time.Millisecond)
	}
	for p := int32(0); p < 2; p++ {
		produceAt(t, prod, topic, p, 2, all[2:]...)
	}
	// a is now retrying a stuck record.
	require.Eventually(t, func() bool { return srcA.Stats().Retries > 0 }, waitFor, time.Millisecond)
	srcB, _ := startSource(t, cfg, b)
	// One partition moves to b and is finished there.
	require.Eventually(t, func() bool {
		return b.isFinished(id(topic, 0, 2)) || b.isFinished(id(topic, 1, 2))
	}, waitFor, 5*time.Millisecond)
	stopA()
	for p := int32(0); p < 2; p++ {
		require.Eventually(t, func() bool { return committed(t, prod, "g2", topic, p) == 5 }, waitFor, 5*time.Millisecond)
	}
	assert.False(t, a.isFinished(id(topic, 0, 2)))
	assert.False(t, a.isFinished(id(topic, 1, 2)))
	assert.Positive(t, srcA.Stats().Abandoned, "a dropped its stuck record on revoke or stop")
	assert.Len(t, srcB.Lag(), 2, "b owns both partitions")
}

// TopicRegex consumes every topic whose whole name matches, and no other.
func TestTopicRegex(t *testing.T) {
	fk := newFakeKafka(t, 1, "srv.shop.a", "srv.shop.b", "srv.shop.b.extra", "other.shop.a")
	prod := fk.client(t)
	for _, topic := range []string{"srv.shop.a", "srv.shop.b", "srv.shop.b.extra", "other.shop.a"} {
		produce(t, prod, topic, 0, values(1)...)
	}
	proc := newScripted(func(pipeline.Message) pipeline.Verdict { return pipeline.Ack })
	startSource(t, Config{Brokers: fk.addrs, TopicRegex: `srv\.shop\.[a-z]+`, Group: "g3"}, proc)
	require.Eventually(t, func() bool {
		return committed(t, prod, "g3", "srv.shop.a", 0) == 1 && committed(t, prod, "g3", "srv.shop.b", 0) == 1
	}, waitFor, 5*time.Millisecond)
	assert.False(t, proc.isFinished(id("srv.shop.b.extra", 0, 0)))
	assert.False(t, proc.isFinished(id("other.shop.a", 0, 0)))
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Topics: []string{"t"}})
	assert.ErrorContains(t, err, "no brokers")
	_, err = New(Config{Brokers: []string{"127.0.0.1:1"}})
	assert.ErrorContains(t, err, "no topics")
	_, err = New(Config{Brokers: []string{"127.0.0.1:1"}, TopicRegex: "("})
	assert.ErrorContains(t, err, "topic regex")
}

func TestStopAbandonsUnfinished(t *testing.T) {
	const topic = "srv.db.s"
	fk := newFakeKafka(t, 1, topic)
	prod := fk.client(t)
	produce(t, prod, topic, 0, values(3)...)
	proc := newScripted(func(m pipeline.Message) pipeline.Verdict {
		if m.ID == id(topic, 0, 1) {
			return pipeline.Retry
		}
		return pipeline.Ack
	})
	guardCommits(t, fk, nil, proc)
	src, stop := startSource(t, Config{Brokers: fk.addrs, Topics: []string{topic}, Group: "g4"}, proc)
	require.Eventually(t, func() bool { return src.Stats().Retries >= 2 }, waitFor, time.Millisecond)
	stop()
	assert.EqualValues(t, 1, committed(t, prod, "g4", topic, 0))
	assert.NotZero(t, src.Stats().Abandoned)
	_ = context.Background
}

// Offsets are committed only behind a successful Durable call made after
// their records finished: while Durable fails (the cache cannot write its
// checkpoint) nothing is committed, however often the commit comes round,
// and once it succeeds every finished record is.
func TestCommitWaitsForDurable(t *testing.T) {
	const topic = "srv.db.durable"
	fk := newFakeKafka(t, 1, topic)
	prod := fk.client(t)
	produce(t, prod, topic, 0, values(5)...)
	proc := newScripted(func(pipeline.Message) pipeline.Verdict { return pipeline.Ack })

	var (
		mu       sync.Mutex
		failing  = true
		calls    int
		durableN int // records finished when Durable last succeeded
	)
	fk.mu.Lock()
	fk.check = func(topic string, p int32, off int64) {
		mu.Lock()
		defer mu.Unlock()
		if off > int64(durableN) {
			t.Errorf("offset %d committed; Durable succeeded with %d records finished", off, durableN)
		}
	}
	fk.mu.Unlock()
	durable := func(context.Context) error {
		n := 0
		for o := range int64(5) {
			if proc.isFinished(id(topic, 0, o)) {
				n++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if failing {
			return errors.New("cache down")
		}
		durableN = n
		return nil
	}
	src, _ := startSource(t, Config{Brokers: fk.addrs, Topics: []string{topic}, Group: "g5", Durable: durable}, proc)
	require.Eventually(t, func() bool { return proc.isFinished(id(topic, 0, 4)) }, waitFor, time.Millisecond)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 3 }, waitFor, time.Millisecond)
	assert.EqualValues(t, -1, committed(t, prod, "g5", topic, 0), "nothing committed while Durable fails")
	assert.Positive(t, src.Stats().CommitErrors)

	mu.Lock()
	failing = false
	mu.Unlock()
	require.Eventually(t, func() bool { return committed(t, prod, "g5", topic, 0) == 5 }, waitFor, 5*time.Millisecond)
}
