package handler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pushtest"
)

// envelopeBodies are push bodies, good and bad, on which parseEnvelope is
// held to encoding/json: by TestParseEnvelopeAgreesWithEncodingJSON and as
// seeds of FuzzParseEnvelope.
func envelopeBodies() []string {
	data := base64.StdEncoding.EncodeToString([]byte(`{"op":"c","after":{"id":1}}`))
	long := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(`{"notes":"ünïcode \\ \" text"}`, 300)))
	return []string{
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
		// The envelope's shape, broken: parked whole.
		`{"message":{"data":12,"messageId":"m"},"subscription":"s"}`,
		`{"message":{"data":"AA==","messageId":"m","attributes":"a"},"subscription":"s"}`,
		`{"message":{"data":"AA==","message_id":"m","messageId":7},"subscription":"s"}`,
		`{"message":{"data":"AA==","messageId":"m"},"subscription":"s","deliveryAttempt":"1"}`,
		`{"subscription":false,"message":{"data":"AA==","messageId":"m"},"subscription":"s"}`,
		// Flattened rows with columns named like envelope members: not envelopes.
		`{"id":1,"message":"hello","__op":"c"}`,
		`{"id":2,"message":{"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":4326},"__op":"c"}`,
		`{"id":3,"message":{"wkb":"AQE=","srid":0},"subscription":"gold"}`,
		`{"message":{"messageId":"m"},"subscription":7}`,
		`{"message":{"messageId":""},"subscription":"s"}`,
		`{"message":"text","message":{"messageId":"m"},"subscription":"s"}`,
		`{"message":{"messageId":"m"},"message":null,"subscription":"s"}`,
		`{"message":{"messageId":"m"},"message":{"data":"AA=="},"subscription":"s"}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":"1"}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":1.5}`,
		`{"message":{"data":"AA=="},"deliveryAttempt":null}`,
		`{"message":{"data":12},"broken":}`, // a type error, then not JSON at all
		`[1,2]`,
		`"a string"`,
		`42`,
		``,
	}
}

func TestParseEnvelopeAgreesWithEncodingJSON(t *testing.T) {
	for _, body := range envelopeBodies() {
		name := body
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) { agreesWithEncodingJSON(t, []byte(body)) })
	}
}

// FuzzParseEnvelope holds parseEnvelope to encoding/json's reading of the
// same body, as TestParseEnvelopeAgreesWithEncodingJSON does case by case.
// Its seeds are envelopeBodies and the recorded events as Pub/Sub wraps them.
func FuzzParseEnvelope(f *testing.F) {
	for _, body := range envelopeBodies() {
		f.Add([]byte(body))
	}
	for _, tc := range debeziumcases.Load(f, "../testdata/debezium") {
		body, err := json.Marshal(pushtest.Envelope{Message: &pushtest.Message{Data: tc.Message(), MessageID: "1"}, Subscription: "s"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) { agreesWithEncodingJSON(t, body) })
}

// agreesWithEncodingJSON checks parseEnvelope reads body as encoding/json
// does: the same verdict (push, not a push, broken) and the same fields.
// The verdict follows the envelope's shape (see parseEnvelope), read here
// with encoding/json's own rules for repeated and null members.
func agreesWithEncodingJSON(t *testing.T, body []byte) {
	if respells(body) {
		return
	}
	var shape struct {
		Message      map[string]any `json:"message"`
		Subscription any            `json:"subscription"`
	}
	shapeErr := json.Unmarshal(body, &shape)
	_, subOK := shape.Subscription.(string)
	id, _ := shape.Message["messageId"].(string)
	id2, _ := shape.Message["message_id"].(string)
	isEnvelope := shapeErr == nil && shape.Message != nil && subOK && (id != "" || id2 != "")

	var want pushtest.Envelope
	wantErr := json.Unmarshal(body, &want)
	wantBroken := isEnvelope && wantErr != nil
	wantOK := isEnvelope && wantErr == nil

	var msg message
	ok, err := parseEnvelope(body, &pushBuffers{}, &msg)
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
}

// envelopeNames are the member names of a push body that parseEnvelope reads.
var envelopeNames = []string{"message", "subscription", "deliveryAttempt", "data", "attributes",
	"messageId", "message_id", "publishTime", "publish_time", "orderingKey"}

// respells reports whether body holds a string that differs from one of
// envelopeNames only in case. encoding/json matches member names without
// regard to case; Pub/Sub writes them exactly and parseEnvelope reads them
// exactly, so such bodies are outside what the two can be compared on.
func respells(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok {
			for _, name := range envelopeNames {
				if s != name && strings.EqualFold(s, name) {
					return true
				}
			}
		}
	}
}

// FuzzDecodeBase64 holds decodeBase64 to encoding/base64: the same bytes,
// the same count and the same error. The seeds are long enough for the
// AVX2 part (45 characters and more) and break it in the places where it
// hands over: a bad character, a line break, padding, a short tail.
func FuzzDecodeBase64(f *testing.F) {
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("change data capture \xff\x00"), 20))
	for _, s := range []string{
		long,
		long[:100] + "!" + long[101:],
		long[:64] + "\r\n" + long[64:],
		long[:200] + "=" + long[201:],
		long[:len(long)-1],
		long + "AAA",
		"QUJD",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		n := base64.StdEncoding.DecodedLen(len(src))
		want, got := make([]byte, n), make([]byte, n)
		wn, werr := base64.StdEncoding.Decode(want, src)
		gn, gerr := decodeBase64(got, src)
		if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("decodeBase64(%q) = %d, %v; encoding/base64: %d, %v", src, gn, gerr, wn, werr)
		}
	})
}

// TestParseEnvelopeReusesBuffers checks a second push decodes into the
// first one's buffers and leaves no trace of it.
func TestParseEnvelopeReusesBuffers(t *testing.T) {
	pb := &pushBuffers{}
	env := func(data, key string) []byte {
		return []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) +
			`","messageId":"1","orderingKey":` + strconvQuote(key) + `},"subscription":"s"}`)
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
