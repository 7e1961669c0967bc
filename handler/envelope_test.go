package handler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pushtest"
)

func TestParseEnvelopeAgreesWithEncodingJSON(t *testing.T) {
	data := base64.StdEncoding.EncodeToString([]byte(`{"op":"c","after":{"id":1}}`))
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(`{"notes":"ünïcode \\ \" text"}`, 300)))
	bodies := []string{
		`{"message":{"data":"` + data + `","attributes":{"a":"1","b":"x\"y"},"messageId":"m1","message_id":"m1",` +
			`"publishTime":"2024-05-01T13:04:05.123Z","publish_time":"2024-05-01T13:04:05.123Z",` +
			`"orderingKey":"{\"id\":1}"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":3}`,
		` { "message" : { "data" : "` + long + `" } } `,
		`{"message":{"message_id":"only-snake","publish_time":"2024-05-01T00:00:00Z","data":null}}`,
		`{"message":{"messageId":"","message_id":"second","attributes":{},"data":""}}`,
		`{"message":{"messageId":"esc\u00e9\n","orderingKey":"","attributes":{"n":null}}}`,
		`{"subscription":"s","message":{"data":"` + data + `"},"extra":[1,{"x":[true,false,null]}]}`,
		`{"message":{"data":"` + data + `"},"message":null}`,
		`{"message":{"data":"` + data + `"},"message":{"messageId":"merged"}}`,
		`{"message":{"data":"AQID\/A=="}}`, // an escaped '/' inside the base64
		`{"message":null}`,
		`{"schema":{"type":"struct"},"payload":{"op":"c"}}`, // an unwrapped Debezium event
		`{}`,
		`not json at all`,
		`{"message":{"data":"` + data + `"}`,   // cut short
		`{"message":{"data":"` + data + `"}}x`, // trailing garbage
		`{"message":{"data":"!!notbase64!!","messageId":"m-3"},"subscription":"s"}`,
		`{"message":{"data":"AAA"}}`, // base64 without padding
		`{"message":{"data":12}}`,
		`{"message":"text"}`,
		`{"message":[]}`,
		`{"message":{"attributes":{"a":1}}}`,
		`{"message":{"attributes":"a"}}`,
		`{"message":{"messageId":7}}`,
		`{"message":{"orderingKey":{}}}`,
		`{"message":{"data":"AA=="},"subscription":false}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":"1"}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":1.5}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":null}`,
		`{"message":{"data":12},"broken":}`, // a type error, then not JSON at all
		`[1,2]`,
		`"a string"`,
		`42`,
		``,
	}
	for _, body := range bodies {
		name := body
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			// The envelope as the handler read it with encoding/json before
			// parseEnvelope replaced that.
			var want pushtest.Envelope
			wantErr := json.Unmarshal([]byte(body), &want)
			var syntax *json.SyntaxError
			wantBroken := wantErr != nil && !errors.As(wantErr, &syntax)
			wantOK := wantErr == nil && want.Message != nil

			var msg message
			ok, err := parseEnvelope([]byte(body), &pushBuffers{}, &msg)
			require.Equal(t, wantBroken, err != nil, "broken envelope: encoding/json said %v, parseEnvelope %v", wantErr, err)
			require.Equal(t, wantOK, ok, "envelope")
			if !ok {
				return
			}
			m := want.Message
			assert.Equal(t, string(m.Data), string(msg.data))
			if len(m.Attributes) == 0 {
				assert.Nil(t, msg.attrs())
			} else {
				assert.Equal(t, m.Attributes, msg.attrs())
			}
			assert.Equal(t, firstNonEmpty(m.MessageID, m.MessageID2), string(msg.id))
			assert.Equal(t, firstNonEmpty(m.PublishTime, m.PublishTime2), string(msg.publishTime))
			assert.Equal(t, m.OrderingKey, string(msg.orderingKey))
			assert.Equal(t, want.Subscription, string(msg.subscription))
		})
	}
}

// TestParseEnvelopeReusesBuffers checks a second push decodes into the
// first one's buffers and leaves no trace of it.
func TestParseEnvelopeReusesBuffers(t *testing.T) {
	pb := &pushBuffers{}
	env := func(data, key string) []byte {
		return []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) +
			`","orderingKey":` + strconvQuote(key) + `}}`)
	}
	var msg message
	ok, err := parseEnvelope(env("a long first message", `{"id":123456}`), pb, &msg)
	require.NoError(t, err)
	require.True(t, ok)
	first := &msg.data[0]

	ok, err = parseEnvelope(env("short", `{"id":1}`), pb, &msg)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "short", string(msg.data))
	assert.Equal(t, `{"id":1}`, string(msg.orderingKey))
	assert.Same(t, first, &msg.data[0], "the data buffer is reused")
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// BenchmarkParseEnvelope measures the envelope alone (no decoder, no
// Redis) on the recorded 6 KB orders update as Pub/Sub wraps it.
func BenchmarkParseEnvelope(b *testing.B) {
	rc := debeziumcases.Load(b, "../testdata/debezium")["bench-orders-update"]
	var data bytes.Buffer
	require.NoError(b, json.Compact(&data, rc.Value))
	body := []byte(`{"message":{"attributes":{},"data":"` + base64.StdEncoding.EncodeToString(data.Bytes()) +
		`","messageId":"1","message_id":"1","orderingKey":"{\"id\":900001}","publishTime":"2024-05-01T13:04:05.123Z",` +
		`"publish_time":"2024-05-01T13:04:05.123Z"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":1}`)
	pb := &pushBuffers{}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var msg message
		if ok, err := parseEnvelope(body, pb, &msg); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
