package handler_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// pstestClient returns a Pub/Sub client of an in-process fake server.
func pstestClient(t *testing.T) (*pstest.Server, *pubsub.Client) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	client, err := pubsub.NewClient(context.Background(), "proj",
		option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return srv, client
}

func TestParkToRejectTopic(t *testing.T) {
	srv, client := pstestClient(t)
	topic := "projects/proj/topics/cdc-rejected"
	_, err := client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topic})
	require.NoError(t, err)
	pub := client.Publisher(topic)
	t.Cleanup(pub.Stop)

	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "", withParker(handler.NewPubSubParker(pub)))
	bad := push{data: []byte(`{"op":"x"}`), attrs: map[string]string{"origin": "dbz"}, id: "ps-1",
		publishTime: publishTime, orderingKey: keyOf(5)}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(bad))

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	assert.Equal(t, bad.data, m.Data)
	assert.Equal(t, "dbz", m.Attributes["origin"])
	assert.Contains(t, m.Attributes[handler.AttrRejectReason], "decode: ")
	assert.Equal(t, "ps-1", m.Attributes[handler.AttrRejectMessageID])
	assert.Equal(t, publishTime, m.Attributes[handler.AttrRejectPublishTime])
	assert.Equal(t, keyOf(5), m.Attributes[handler.AttrRejectOrderingKey])
	assert.Equal(t, "projects/p/subscriptions/s", m.Attributes[handler.AttrRejectSubscription])
	_, err = time.Parse(time.RFC3339Nano, m.Attributes[handler.AttrRejectedAt])
	assert.NoError(t, err)
	assert.Empty(t, r.rejected(t), "nothing in the Redis stream when a reject topic is used")
	assert.Equal(t, uint64(1), r.h.Metrics().Total().Outcomes[cdc.OutcomeRejected])
}

func TestParkToMissingTopicIs5xx(t *testing.T) {
	_, client := pstestClient(t)
	pub := client.Publisher("projects/proj/topics/does-not-exist")
	t.Cleanup(pub.Stop)
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "", withParker(handler.NewPubSubParker(pub)))
	assert.Equal(t, http.StatusServiceUnavailable, r.pushWrapped(push{data: []byte("junk"), id: "ps-2"}))
}
