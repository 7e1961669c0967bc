package kafkasource

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// A parked message lands in the DLQ topic with its payload, its Debezium
// key as the record key, its headers, and why and when it was parked.
func TestDLQParker(t *testing.T) {
	fk := newFakeKafka(t, 1, "srv.db.t", "cdc-dlq")
	cl := fk.client(t)
	at := time.Date(2026, 12, 3, 8, 0, 0, 5, time.UTC)
	payload := []byte(`{"broken":`)
	err := NewDLQParker(cl, "cdc-dlq").Park(context.Background(), pipeline.Rejected{
		Reason: "decode: unexpected end of JSON", Payload: payload,
		Attributes: map[string]string{"trace": "abc"}, MessageID: "srv.db.t/0/7",
		PublishTime: time.Date(2026, 12, 3, 7, 59, 59, 0, time.UTC), Key: `{"id":7}`, Source: "srv.db.t", RejectedAt: at,
	})
	require.NoError(t, err)
	payload[0] = 'X' // the parker must not keep the caller's buffer

	rd := fk.client(t, kgo.ConsumeTopics("cdc-dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	fs := rd.PollFetches(ctx)
	require.NoError(t, fs.Err())
	recs := fs.Records()
	require.Len(t, recs, 1)
	r := recs[0]
	assert.Equal(t, `{"broken":`, string(r.Value))
	assert.Equal(t, `{"id":7}`, string(r.Key))
	hdr := map[string]string{}
	for _, h := range r.Headers {
		hdr[h.Key] = string(h.Value)
	}
	assert.Equal(t, map[string]string{
		"trace":             "abc",
		"cdc_reject_reason": "decode: unexpected end of JSON",
		"cdc_message_id":    "srv.db.t/0/7",
		"cdc_source":        "srv.db.t",
		"cdc_publish_time":  "2026-12-03T07:59:59Z",
		"cdc_rejected_at":   "2026-12-03T08:00:00.000000005Z",
	}, hdr)
}

// Parking fails (so the record is retried, not committed) when the DLQ
// topic cannot be written.
func TestDLQParkerFails(t *testing.T) {
	fk := newFakeKafka(t, 1, "srv.db.t")
	cl := fk.client(t, kgo.RecordDeliveryTimeout(time.Second))
	err := NewDLQParker(cl, "no-such-topic").Park(context.Background(), pipeline.Rejected{Payload: []byte("x")})
	assert.ErrorContains(t, err, "park in kafka topic no-such-topic")
}
