// Package pubsubpark parks rejected messages on a Pub/Sub reject topic
// (REJECT_TOPIC): the Pub/Sub leaf of pipeline.Parker, for every transport.
package pubsubpark

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// Attributes the Parker adds to a parked message, beside the
// message's own attributes.
const (
	AttrRejectReason       = "cdc_reject_reason"
	AttrRejectMessageID    = "cdc_message_id"
	AttrRejectPublishTime  = "cdc_publish_time"
	AttrRejectOrderingKey  = "cdc_ordering_key"
	AttrRejectSubscription = "cdc_subscription"
	AttrRejectedAt         = "cdc_rejected_at"
)

// maxAttrValue is Pub/Sub's limit on an attribute value (bytes).
const maxAttrValue = 1024

// Parker publishes rejected messages to a reject topic: the payload
// as data, the original attributes, plus cdc_reject_reason (cut to Pub/Sub's
// 1024-byte attribute limit), cdc_rejected_at (RFC 3339, UTC), and, when
// known, cdc_message_id, cdc_publish_time, cdc_ordering_key and
// cdc_subscription. The ordering key
// travels as an attribute because the reject topic needs no ordering.
type Parker struct {
	pub *pubsub.Publisher
}

// New parks to pub (from client.Publisher(topic)); the caller
// stops pub when done.
func New(pub *pubsub.Publisher) *Parker {
	return &Parker{pub: pub}
}

// Park publishes the message and waits for Pub/Sub to accept it.
func (p *Parker) Park(ctx context.Context, rej pipeline.Rejected) error {
	attrs := make(map[string]string, len(rej.Attributes)+6)
	for k, v := range rej.Attributes {
		attrs[k] = v
	}
	attrs[AttrRejectReason] = truncateUTF8(rej.Reason, maxAttrValue)
	attrs[AttrRejectedAt] = rej.RejectedAt.UTC().Format(time.RFC3339Nano)
	published := ""
	if !rej.PublishTime.IsZero() {
		published = rej.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range map[string]string{AttrRejectMessageID: rej.MessageID,
		AttrRejectPublishTime: published, AttrRejectOrderingKey: rej.Key,
		AttrRejectSubscription: rej.Source} {
		if v != "" {
			attrs[k] = v
		}
	}
	// A copy: if ctx ends first, the publisher still holds the message while
	// the transport reuses the buffer the payload lives in.
	msg := &pubsub.Message{Data: bytes.Clone(rej.Payload), Attributes: attrs}
	if _, err := p.pub.Publish(ctx, msg).Get(ctx); err != nil {
		return fmt.Errorf("park to reject topic: %w", err)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
