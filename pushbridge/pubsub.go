// Package pushbridge runs Pub/Sub in-process and pushes its messages to an
// HTTP endpoint the way a Pub/Sub push subscription does.
//
// PubSub is the client library's fake server (pstest) with a v2 client:
// topics, subscriptions with dead-letter policies, publishing. pstest does
// not push, so Bridge pulls every subscription and POSTs real wrapped push
// envelopes to the function: acknowledged on 2xx, redelivered after an
// exponential backoff otherwise, moved to a dead-letter topic after the
// maximum delivery attempts, per-key serialised when ordering is on. For
// chaos tests it can inject duplicate deliveries, random delays and
// reordering. Its counters (published, delivered, acked, retried,
// dead-lettered, pending) are what `cachectl status` shows as the backlog.
//
// The bridge pulls with the unary Pull RPC rather than Subscriber.Receive:
// pstest hands StreamingPull one message per 10 ms tick, about 300 messages a
// second, while Pull returns up to a thousand at once.
package pushbridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// PubSub is an in-process Pub/Sub server and a client connected to it.
type PubSub struct {
	srv     *pstest.Server // nil when dialled (DialPubSub)
	client  *pubsub.Client
	project string

	// published counts messages handed to the server, less those whose
	// publish failed. It is raised before the publish, not on its
	// confirmation: the bridge can pull and acknowledge a message before its
	// publisher hears back, and a backlog of published minus acknowledged
	// must never go negative.
	published atomic.Int64

	mu         sync.Mutex                   // guards publishers
	publishers map[string]*pubsub.Publisher // by topic ID
}

// Message is one message to publish.
type Message struct {
	// Topic is the topic ID (not the full name).
	Topic string
	// Data is the message body.
	Data []byte
	// OrderingKey, when set, orders the topic's messages with that key.
	OrderingKey string
	// Attributes are the message attributes.
	Attributes map[string]string
}

// NewPubSub starts a fake Pub/Sub server for project and connects a client.
func NewPubSub(ctx context.Context, project string) (*PubSub, error) {
	return newPubSub(ctx, project)
}

// DialPubSub connects a client for project to a Pub/Sub fake served at addr
// by someone else (internal/pubsubfake, in this process or its own); Close
// closes the client only.
func DialPubSub(ctx context.Context, project, addr string) (*PubSub, error) {
	client, err := pubsub.NewClient(ctx, project, fakeOptions(addr)...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	return &PubSub{client: client, project: project, publishers: map[string]*pubsub.Publisher{}}, nil
}

// fakeOptions reach a fake at addr: no TLS, no credentials.
func fakeOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// newPubSub is NewPubSub with more options for the client's connection
// (tests slow its responses down).
func newPubSub(ctx context.Context, project string, dial ...grpc.DialOption) (*PubSub, error) {
	srv := pstest.NewServer()
	opts := fakeOptions(srv.Addr)
	for _, d := range dial {
		opts = append(opts, option.WithGRPCDialOption(d))
	}
	client, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	return &PubSub{srv: srv, client: client, project: project, publishers: map[string]*pubsub.Publisher{}}, nil
}

// Client returns the client, for the administration calls Publish does not
// make (subscriptions of other kinds than the bridge's).
func (p *PubSub) Client() *pubsub.Client { return p.client }

// Project returns the project ID.
func (p *PubSub) Project() string { return p.project }

// TopicName returns the full resource name of a topic ID.
func (p *PubSub) TopicName(id string) string { return "projects/" + p.project + "/topics/" + id }

// SubscriptionName returns the full resource name of a subscription ID.
func (p *PubSub) SubscriptionName(id string) string {
	return "projects/" + p.project + "/subscriptions/" + id
}

// CreateTopic creates a topic.
func (p *PubSub) CreateTopic(ctx context.Context, id string) error {
	_, err := p.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: p.TopicName(id)})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", id, err)
	}
	return nil
}

// Publish publishes msgs, batched by the client, and waits for every
// confirmation. It returns the server's message IDs in the order of msgs.
func (p *PubSub) Publish(ctx context.Context, msgs []Message) ([]string, error) {
	p.published.Add(int64(len(msgs)))
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.publisher(m.Topic).Publish(ctx, &pubsub.Message{
			Data: m.Data, OrderingKey: m.OrderingKey, Attributes: m.Attributes,
		})
	}
	ids := make([]string, len(msgs))
	var firstErr error
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			p.published.Add(-1)
			if firstErr == nil {
				firstErr = fmt.Errorf("publish to %s: %w", msgs[i].Topic, err)
			}
			continue
		}
		ids[i] = id
	}
	return ids, firstErr
}

// Published returns how many messages were published: handed to the server
// and not failed (a publish still waiting for its confirmation counts).
func (p *PubSub) Published() int64 { return p.published.Load() }

func (p *PubSub) publisher(topic string) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub := p.publishers[topic]
	if pub == nil {
		pub = p.client.Publisher(topic)
		// Needed for messages with an ordering key; keyless messages are
		// batched as before.
		pub.EnableMessageOrdering = true
		p.publishers[topic] = pub
	}
	return pub
}

// Close stops the publishers, the client and the server.
func (p *PubSub) Close() error {
	p.mu.Lock()
	for _, pub := range p.publishers {
		pub.Stop()
	}
	p.mu.Unlock()
	err := p.client.Close()
	if p.srv == nil { // DialPubSub: the server is someone else's
		return err
	}
	if cerr := p.srv.Close(); err == nil {
		err = cerr
	}
	return err
}
