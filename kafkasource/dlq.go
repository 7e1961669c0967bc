package kafkasource

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// Headers the DLQ parker adds to a parked record, beside the record's own
// headers; the names are the reject topic's attribute names.
const (
	HeaderRejectReason    = "cdc_reject_reason"
	HeaderRejectMessageID = "cdc_message_id"
	HeaderRejectPublished = "cdc_publish_time"
	HeaderRejectedAt      = "cdc_rejected_at"
	HeaderRejectSource    = "cdc_source"
)

// DLQParker parks rejected messages in a Kafka topic: the payload as value,
// the Debezium key as key (so a replay lands on the same partition as the
// row's other changes), the original headers, plus cdc_reject_reason,
// cdc_message_id ("topic/partition/offset" of the original record),
// cdc_source (its topic),
// cdc_publish_time (its timestamp, RFC 3339, when known) and cdc_rejected_at.
type DLQParker struct {
	cl    *kgo.Client
	topic string
}

// NewDLQParker parks to topic through cl (the source's client serves).
func NewDLQParker(cl *kgo.Client, topic string) *DLQParker {
	return &DLQParker{cl: cl, topic: topic}
}

// Park produces the record and waits until the brokers have it.
func (p *DLQParker) Park(ctx context.Context, rej pipeline.Rejected) error {
	r := &kgo.Record{
		Topic: p.topic,
		Value: append([]byte(nil), rej.Payload...),
	}
	if rej.Key != "" {
		r.Key = []byte(rej.Key)
	}
	for k, v := range rej.Attributes {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	r.Headers = append(r.Headers,
		kgo.RecordHeader{Key: HeaderRejectReason, Value: []byte(rej.Reason)},
		kgo.RecordHeader{Key: HeaderRejectMessageID, Value: []byte(rej.MessageID)},
		kgo.RecordHeader{Key: HeaderRejectSource, Value: []byte(rej.Source)},
		kgo.RecordHeader{Key: HeaderRejectedAt, Value: []byte(rej.RejectedAt.UTC().Format(time.RFC3339Nano))},
	)
	if !rej.PublishTime.IsZero() {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderRejectPublished,
			Value: []byte(rej.PublishTime.UTC().Format(time.RFC3339Nano))})
	}
	if err := p.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("park in kafka topic %s: %w", p.topic, err)
	}
	return nil
}
