package localrun

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaBacklog counts the records past the committed offsets; a group that
// never committed (unknown to the broker) has everything pending, but a
// failed read of the offsets is an error, not "nothing committed": read as
// that, one broker hiccup made the whole log pending and held the producer
// back (MaxBacklog) until the next good read.
func TestKafkaBacklog(t *testing.T) {
	const topic = "srv.db.t"
	c, err := StartKafka([]string{topic}, 1)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx := context.Background()
	recs := make([]*kgo.Record, 10)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Value: []byte("v")}
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	adm := kadm.NewClient(cl)

	n, err := KafkaBacklog(ctx, adm, "g", topic)
	require.NoError(t, err, "a group that never committed")
	assert.EqualValues(t, 10, n)

	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1})
	_, err = adm.CommitOffsets(ctx, "g", offs)
	require.NoError(t, err)
	n, err = KafkaBacklog(ctx, adm, "g", topic)
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)

	c.KeepControl()
	for name, fail := range map[string]func(*kmsg.OffsetFetchResponse){
		"group error": func(resp *kmsg.OffsetFetchResponse) {
			resp.ErrorCode = kerr.UnknownServerError.Code
			for i := range resp.Groups {
				resp.Groups[i].ErrorCode = kerr.UnknownServerError.Code
			}
		},
		"partition error": func(resp *kmsg.OffsetFetchResponse) {
			for i := range resp.Groups {
				resp.Groups[i].Topics = []kmsg.OffsetFetchResponseGroupTopic{{Topic: topic,
					Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{{Partition: 0, Offset: -1,
						ErrorCode: kerr.UnknownServerError.Code}}}}
			}
		},
	} {
		c.ControlKey(kmsg.OffsetFetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.DropControl() // only this request
			r := req.(*kmsg.OffsetFetchRequest)
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			for _, g := range r.Groups {
				resp.Groups = append(resp.Groups, kmsg.OffsetFetchResponseGroup{Group: g.Group})
			}
			fail(resp)
			return resp, nil, true
		})
		_, err = KafkaBacklog(ctx, adm, "g", topic)
		assert.Error(t, err, name)
	}
}
