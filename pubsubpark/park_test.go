package pubsubpark_test

import (
	"context"
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

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpark"
)

// rejectTopic returns an in-process fake server with a reject topic, and a
// publisher to it.
func rejectTopic(t *testing.T) (*pstest.Server, *pubsub.Publisher) {
	t.Helper()
	srv, client := pstestClient(t)
	topic := "projects/proj/topics/cdc-rejected"
	_, err := client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topic})
	require.NoError(t, err)
	pub := client.Publisher(topic)
	t.Cleanup(pub.Stop)
	return srv, pub
}

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
	srv, pub := rejectTopic(t)

	published := time.Date(2024, 5, 1, 13, 4, 5, 123e6, time.UTC)
	rej := pipeline.Rejected{Reason: "decode: bad", Payload: []byte(`{"op":"x"}`),
		Attributes: map[string]string{"origin": "dbz"}, MessageID: "ps-1", Key: `{"id":5}`,
		Source: "projects/p/subscriptions/s", PublishTime: published, RejectedAt: time.Now()}
	require.NoError(t, pubsubpark.New(pub).Park(context.Background(), rej))

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	assert.Equal(t, rej.Payload, m.Data)
	assert.Equal(t, "dbz", m.Attributes["origin"])
	assert.Equal(t, "decode: bad", m.Attributes[pubsubpark.AttrRejectReason])
	assert.Equal(t, "ps-1", m.Attributes[pubsubpark.AttrRejectMessageID])
	assert.Equal(t, "2024-05-01T13:04:05.123Z", m.Attributes[pubsubpark.AttrRejectPublishTime])
	assert.Equal(t, `{"id":5}`, m.Attributes[pubsubpark.AttrRejectOrderingKey])
	assert.Equal(t, "projects/p/subscriptions/s", m.Attributes[pubsubpark.AttrRejectSubscription])
	_, err := time.Parse(time.RFC3339Nano, m.Attributes[pubsubpark.AttrRejectedAt])
	assert.NoError(t, err)
}

func TestParkWithoutMetadataOmitsItsAttributes(t *testing.T) {
	srv, pub := rejectTopic(t)
	long := string(make([]byte, 3000))
	require.NoError(t, pubsubpark.New(pub).Park(context.Background(), pipeline.Rejected{Reason: long, Payload: []byte("x")}))
	m := srv.Messages()[0]
	assert.Len(t, m.Attributes[pubsubpark.AttrRejectReason], 1024, "cut to Pub/Sub's attribute limit")
	for _, a := range []string{pubsubpark.AttrRejectMessageID, pubsubpark.AttrRejectPublishTime,
		pubsubpark.AttrRejectOrderingKey, pubsubpark.AttrRejectSubscription} {
		assert.NotContains(t, m.Attributes, a)
	}
}

func TestParkToMissingTopicFails(t *testing.T) {
	_, client := pstestClient(t)
	pub := client.Publisher("projects/proj/topics/does-not-exist")
	t.Cleanup(pub.Stop)
	err := pubsubpark.New(pub).Park(context.Background(), pipeline.Rejected{Reason: "r", Payload: []byte("junk")})
	assert.Error(t, err)
}
