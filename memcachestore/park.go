package memcachestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// ErrNoParker is what NoParker answers: memcached has no stream to keep
// rejected messages in.
var ErrNoParker = errors.New("memcachestore: nowhere to park a rejected message: memcached has no stream; set REJECT_TOPIC (or KAFKA_DLQ_TOPIC for the Kafka worker)")

// NoParker is the parker of a memcached deployment with no reject topic:
// it refuses every message, so the message is retried (answered 503, or
// not acknowledged) and the subscription's dead-letter topic keeps it in
// the end, instead of being acknowledged and lost.
type NoParker struct{}

// Park refuses.
func (NoParker) Park(ctx context.Context, rej pipeline.Rejected) error {
	return fmt.Errorf("%w (reason: %s)", ErrNoParker, rej.Reason)
}

// Ping asks every node for its version; an error names the first node that
// does not answer.
func (c *Client) Ping(ctx context.Context) error {
	for _, n := range c.nodes {
		if _, err := c.Raw(ctx, n.addr, "version", "VERSION"); err != nil {
			return err
		}
	}
	return nil
}
