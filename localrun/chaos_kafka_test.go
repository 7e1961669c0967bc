package localrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// kafkaChaos is Kafka delivery under the convergence test: workers of one
// consumer group (a 1 s session) consume the Kafka fake, and the producer
// resends 20% of its messages in its next publish, as a producer retrying
// after a lost acknowledgement does, so duplicates arrive behind newer
// changes of their rows. At the crash a second worker joins (the group
// rebalances onto both), the first is killed (SIGKILL, its batches
// unfinished and uncommitted), its session ends (the second takes every
// partition), and it is started again (a third rebalance).
//
// Every offset commit is audited as the fake receives it (commitAudit): each
// record below the committed offset must be in Redis at its version or a
// newer one, or parked. That is what "commit only what is finished" means,
// and the cache's final state cannot show it: a record committed before it
// was applied and applied later (or by a duplicate) leaves no trace there.
func kafkaChaos(t *testing.T, rig *chaosRig) chaosDelivery {
	ctx := rig.ctx
	// kfake's default minimum session is Kafka's, 6 s.
	q, err := StartKafkaQueue(rig.gen.Topics(), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	// The audit's own client fails at once while Redis is down: it reads
	// inside the fake, whose heartbeats wait for it.
	ardb := redis.NewClient(&redis.Options{Addr: rig.rs.Addr(), MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { ardb.Close() })
	audit, err := newCommitAudit(ctx, q, ardb, rig.prefix)
	require.NoError(t, err)
	q.Cluster.ControlKey(kmsg.OffsetCommit.Int16(), audit.control)
	resend := &resender{inner: q, audit: audit, share: 0.2, r: rand.New(rand.NewPCG(7, 7))}

	bin, err := BuildWorker(ctx, rig.dir)
	require.NoError(t, err)
	env := append(append(slices.Clip(rig.env), q.Env()...), "KAFKA_SESSION_TIMEOUT=1s")
	worker := func(name string) *Function {
		port, err := FreePort()
		require.NoError(t, err)
		w := &Function{Name: name, Bin: bin, Port: port, Output: rig.log, Env: env}
		t.Cleanup(func() { w.Kill() })
		return w
	}
	a, b := worker("worker a"), worker("worker b")
	if err := a.Start(ctx); err != nil {
		logTail(t, rig.log.Name())
		require.NoError(t, err)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	scrape := func(w *Function) Totals {
		now, err := Scrape(ctx, client, w.URL())
		require.NoError(t, err)
		return now
	}
	// members counts the group's members that hold partitions.
	members := func() int {
		gs, err := q.adm.DescribeGroups(ctx, q.Group)
		if err != nil {
			return -1
		}
		n := 0
		for _, m := range gs[q.Group].Members {
			if c, ok := m.Assigned.AsConsumer(); ok && len(c.Topics) > 0 {
				n++
			}
		}
		return n
	}
	var killed Totals // a's outcomes before the kill (not complete: it went on until killed)
	return chaosDelivery{
		publisher: resend,
		pending:   func() int64 { return q.Stats().Pending },
		idle:      q.Idle,
		// Failed applies, or failed commits: with the producer held back
		// at its backlog, a worker that applied all it fetched meets a
		// Redis crash only when it makes its changes durable to commit.
		failures: func() int64 { // called by Eventually's goroutine: no FailNow
			now, err := Scrape(ctx, client, a.URL())
			if err != nil {
				return -1
			}
			errs, err := commitErrors(ctx, client, a.URL())
			if err != nil {
				return -1
			}
			return int64(now.Outcomes[cdc.OutcomeFailed]) + errs
		},
		crash: func() {
			require.NoError(t, b.Start(ctx))
			require.Eventually(t, func() bool { return members() == 2 }, 30*time.Second, 10*time.Millisecond,
				"the group never rebalanced onto both workers")
			require.Positive(t, q.Stats().Pending, "nothing in flight to lose")
			killed = scrape(a)
			require.NoError(t, a.Kill())
			require.Eventually(t, func() bool { return members() == 1 }, 30*time.Second, 10*time.Millisecond,
				"the killed worker's partitions never moved")
			require.NoError(t, a.Start(ctx))
		},
		stop:     func() error { return errors.Join(a.Stop(), b.Stop()) },
		sent:     audit.sent,
		parkedAs: audit.original,
		account: func(p Produced, parked int) {
			st := q.Stats()
			resent := resend.resent.Load()
			totals := killed.Plus(scrape(a)).Plus(scrape(b))
			audit.mu.Lock()
			defer audit.mu.Unlock()
			t.Logf("queue %+v; resent %d; commits audited %d, refused %d (records not yet known or Redis down), records covered %d; outcomes %v",
				st, resent, audit.commits, audit.refused, audit.covered(), totals.Outcomes)
			published := int64(p.Changes+p.Malformed) + resent
			assert.Equal(t, published, st.Published)
			assert.Zero(t, st.Pending)
			assert.Positive(t, resent, "the producer resent messages")
			assert.Positive(t, audit.commits, "the audit saw commits")
			assert.Empty(t, audit.violations, "offsets committed past records neither applied nor parked")
			assert.Equal(t, published, audit.covered(), "every record was below an audited commit")
			assert.Positive(t, totals.Outcomes[cdc.OutcomeStale], "duplicates behind newer changes were found stale")
			assert.GreaterOrEqual(t, parked, p.Malformed)
		},
	}
}

// commitErrors reads cdc_kafka_commit_errors_total from the worker at url.
func commitErrors(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "cdc_kafka_commit_errors_total "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no cdc_kafka_commit_errors_total in /metrics")
}

// resender publishes through inner and publishes a share of each call's
// messages again at the end of the next call, under new offsets.
type resender struct {
	inner Publisher
	audit *commitAudit
	share float64
	r     *rand.Rand // used by Publish only (the producer's goroutine)

	queued    []pushbridge.Message // to resend next call
	queuedIDs []string             // their first IDs
	resent    atomic.Int64
}

func (s *resender) Publish(ctx context.Context, msgs []pushbridge.Message) ([]string, error) {
	ids, err := s.inner.Publish(ctx, append(slices.Clip(msgs), s.queued...))
	if err != nil {
		return nil, err
	}
	for j, first := range s.queuedIDs {
		s.audit.alias(ids[len(msgs)+j], first)
	}
	s.resent.Add(int64(len(s.queued)))
	s.queued, s.queuedIDs = s.queued[:0], s.queuedIDs[:0]
	for i, m := range msgs {
		if s.r.Float64() < s.share {
			s.queued, s.queuedIDs = append(s.queued, m), append(s.queuedIDs, ids[i])
		}
	}
	return ids[:len(msgs)], nil
}

// commitAudit checks every offset commit of the group before the fake
// takes it: every record below the committed offset must be finished, its
// change in Redis at its version or a newer one (versions in the cache
// only grow), or, malformed, in the reject stream. A commit it cannot check
// yet (a record the producer has not reported, Redis down) is refused with
// a retriable error, which the worker meets as a failed commit and tries
// again; the audit never waits inside the fake, whose heartbeats would wait
// with it.
type commitAudit struct {
	q      *KafkaQueue
	read   Records
	rdb    *redis.Client
	stream string
	prefix string
	names  map[[16]byte]string // topic IDs (OffsetCommit v10 names topics by ID)

	mu         sync.Mutex
	records    map[string]auditRecord // by first message ID; guarded by mu
	aliases    map[string]string      // a resent record's ID -> its first ID; guarded by mu
	checked    map[auditPartition]int64
	parked     map[string]bool // message IDs in the reject stream, read up to lastParked
	lastParked string
	commits    int      // commits checked and let through
	refused    int      // commits refused
	violations []string // records committed unfinished
}

type auditRecord struct {
	key       string
	version   cdc.Version
	malformed bool
}

type auditPartition struct {
	topic     string
	partition int32
}

func newCommitAudit(ctx context.Context, q *KafkaQueue, rdb *redis.Client, prefix string) (*commitAudit, error) {
	details, err := q.adm.ListTopics(ctx, q.topics...)
	if err != nil {
		return nil, err
	}
	a := &commitAudit{q: q, read: RedisRecords(rdb), rdb: rdb, stream: redisstore.RejectedStreamKey(prefix),
		prefix: prefix, names: map[[16]byte]string{}, records: map[string]auditRecord{},
		aliases: map[string]string{}, checked: map[auditPartition]int64{}, parked: map[string]bool{}, lastParked: "-"}
	for name, d := range details {
		a.names[d.ID] = name
	}
	return a, nil
}

// sent records a published message (ProduceOptions.Sent).
func (a *commitAudit) sent(m changegen.Message, id string) {
	a.mu.Lock()
	a.records[id] = auditRecord{key: m.Key, version: m.Version, malformed: m.Key == ""}
	a.mu.Unlock()
}

// alias records that the record id is a resend of the record first.
func (a *commitAudit) alias(id, first string) {
	a.mu.Lock()
	a.aliases[id] = first
	a.mu.Unlock()
}

// original returns the first ID of the record id.
func (a *commitAudit) original(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return firstNonEmpty(a.aliases[id], id)
}

// covered counts the records below audited commits. Called with mu held.
func (a *commitAudit) covered() int64 {
	var n int64
	for _, off := range a.checked {
		n += off
	}
	return n
}

// control is the fake's OffsetCommit hook.
func (a *commitAudit) control(req kmsg.Request) (kmsg.Response, error, bool) {
	a.q.Cluster.KeepControl()
	r := req.(*kmsg.OffsetCommitRequest)
	if r.Group != a.q.Group {
		return nil, nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.check(r); err != nil {
		a.refused++
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.OffsetCommitResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitResponseTopicPartition{
					Partition: p.Partition, ErrorCode: kerr.CoordinatorLoadInProgress.Code})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	}
	a.commits++
	return nil, nil, false
}

// check audits the records a commit newly covers. Called with mu held.
func (a *commitAudit) check(r *kmsg.OffsetCommitRequest) error {
	type item struct {
		id  string
		rec auditRecord
	}
	var items []item
	var keys []string
	ends := map[auditPartition]int64{}
	for _, t := range r.Topics {
		topic := firstNonEmpty(t.Topic, a.names[t.TopicID])
		for _, p := range t.Partitions {
			tp := auditPartition{topic, p.Partition}
			for off := a.checked[tp]; off < p.Offset; off++ {
				id := fmt.Sprintf("%s/%d/%d", topic, p.Partition, off)
				rec, ok := a.records[firstNonEmpty(a.aliases[id], id)]
				if !ok {
					return fmt.Errorf("record %s not reported yet", id)
				}
				items = append(items, item{id, rec})
				if !rec.malformed {
					keys = append(keys, a.prefix+rec.key)
				}
			}
			ends[tp] = max(ends[tp], p.Offset)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var cached []Cached
	if len(keys) > 0 {
		var err error
		if cached, err = a.read(ctx, keys); err != nil {
			return err
		}
	}
	for _, it := range items {
		if !it.rec.malformed {
			c := cached[0]
			cached = cached[1:]
			if c.Version < string(it.rec.version) {
				a.violations = append(a.violations, fmt.Sprintf("%s (%s at %s) committed, cache at %q",
					it.id, it.rec.key, it.rec.version, c.Version))
			}
			continue
		}
		if !a.parked[it.id] {
			if err := a.readParked(ctx); err != nil {
				return err
			}
		}
		if !a.parked[it.id] {
			a.violations = append(a.violations, fmt.Sprintf("%s (malformed) committed, not parked", it.id))
		}
	}
	for tp, end := range ends {
		a.checked[tp] = max(a.checked[tp], end)
	}
	return nil
}

// readParked reads the reject stream's entries after the last one read.
// Called with mu held.
func (a *commitAudit) readParked(ctx context.Context) error {
	start := a.lastParked
	if start != "-" {
		start = "(" + start
	}
	entries, err := a.rdb.XRange(ctx, a.stream, start, "+").Result()
	if err != nil {
		return err
	}
	for _, e := range entries {
		id, _ := e.Values["message_id"].(string)
		a.parked[id] = true
		a.lastParked = e.ID
	}
	return nil
}
