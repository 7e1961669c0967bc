package handler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"

	simd "github.com/segmentio/asm/base64"
)

// pushBuffers are one push's reusable buffers, pooled by the Handler: the
// request body, the decoded message data and the unescaped ordering key,
// with the push's share of the memory budget.
// Nothing may keep them once the push is answered.
type pushBuffers struct {
	body bytes.Buffer
	data []byte
	key  []byte
	// held is the memory budget the push holds; metered reads a body of
	// undeclared length, charging it as it arrives.
	held    int64
	metered meteredBody
}

// message is one Pub/Sub message as delivered, either way. The metadata
// alias the request (or pushBuffers) and are turned into strings only when
// a message is parked or logged.
type message struct {
	data []byte
	// header is an unwrapped push's request header and attrsJSON a wrapped
	// push's attributes object: either is turned into attributes only for
	// parking, never on the path of an applied change.
	header       http.Header
	attrsJSON    []byte
	id           []byte
	publishTime  []byte
	orderingKey  []byte
	subscription []byte
}

// attrs returns the message attributes, nil when there are none.
func (m *message) attrs() map[string]string {
	if m.header != nil {
		return headerAttributes(m.header)
	}
	if len(m.attrsJSON) == 0 {
		return nil
	}
	var a map[string]string
	// parseEnvelope checked every value is a string or null.
	_ = json.Unmarshal(m.attrsJSON, &a)
	if len(a) == 0 {
		return nil
	}
	return a
}

// parseEnvelope reads a wrapped push body into msg, decoding message.data
// (base64) into pb.data; the other fields alias body or pb. Pub/Sub writes
// messageId and publishTime twice, also as message_id and publish_time.
//
// A body is an envelope only by the shape Pub/Sub always gives one: a JSON
// object with a string "subscription" and a "message" object that carries a
// non-empty string "messageId" or "message_id". Anything else (ok false, no
// error) is an unwrapped push without metadata headers, whose body is the
// message data: a flattened row may well have columns called message or
// subscription, and must reach the decoder as a row. Member names are matched
// exactly, as Pub/Sub writes them; where names repeat, values combine as
// encoding/json combines them. An error means the body has the envelope's
// shape but a broken member (a wrong type, bad base64): it is parked whole.
func parseEnvelope(body []byte, pb *pushBuffers, msg *message) (ok bool, err error) {
	r := debezium.NewJSONReader(body)
	if r.Peek() != '{' {
		return false, nil
	}
	var (
		f   envelopeFields
		bad error // the first wrong type; it counts only for a body of the envelope's shape
	)
	if err := f.read(r, &bad); err != nil || r.End() != nil || !f.isEnvelope() {
		return false, nil
	}
	if bad != nil {
		return false, bad
	}
	if err := f.decodeData(pb); err != nil {
		return false, err
	}
	*msg = message{
		data:         pb.data,
		attrsJSON:    f.attributes,
		id:           unquote(firstOf(f.id, f.id2)),
		publishTime:  unquote(firstOf(f.publishTime, f.publishTime2)),
		subscription: unquote(f.subscription),
	}
	if f.orderingKey != nil {
		// A Debezium key is JSON inside a JSON string: it always has escapes.
		pb.key, _ = debezium.AppendUnquoted(pb.key[:0], f.orderingKey)
		msg.orderingKey = pb.key
	}
	return true, nil
}

// envelopeFields are the envelope members the handler uses, as spans of the
// body: strings with their quotes, nil when absent or null.
type envelopeFields struct {
	message bool // a message object was present
	// notMessage is set once a message member is neither an object nor
	// null: then the body is not an envelope, whatever follows.
	notMessage                bool
	data, attributes          []byte
	id, id2                   []byte
	publishTime, publishTime2 []byte
	orderingKey, subscription []byte
}

// isEnvelope reports whether the fields read have a push envelope's shape.
func (f *envelopeFields) isEnvelope() bool {
	return f.message && !f.notMessage && f.subscription != nil && len(firstOf(f.id, f.id2)) > len(`""`)
}

// read reads the top-level object. Syntax errors are returned; the first
// member of the wrong type is left in *bad and reading goes on, so that a
// body that is not JSON after all is still told apart.
func (f *envelopeFields) read(r *debezium.JSONReader, bad *error) error {
	if err := r.Object(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := r.Member(n)
		if err != nil || !more {
			return err
		}
		switch string(key) {
		case "message":
			switch r.Peek() {
			case '{':
				f.message = true
				err = f.readMessage(r, bad)
			case 'n':
				// encoding/json drops a message read before.
				*f = envelopeFields{subscription: f.subscription, notMessage: f.notMessage}
				_, err = r.Skip()
			default:
				f.notMessage = true
				_, err = r.Skip()
			}
		case "subscription":
			f.subscription, err = stringMember(r, "subscription", bad)
		case "deliveryAttempt":
			var v []byte
			if v, err = r.Skip(); err == nil && !isIntOrNull(v) {
				setBad(bad, "deliveryAttempt: want an integer")
			}
		default:
			_, err = r.Skip()
		}
		if err != nil {
			return err
		}
	}
}

// readMessage reads the message object, whose '{' is next.
func (f *envelopeFields) readMessage(r *debezium.JSONReader, bad *error) error {
	if err := r.Object(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := r.Member(n)
		if err != nil || !more {
			return err
		}
		switch string(key) {
		case "data":
			f.data, err = stringMember(r, "message.data", bad)
		case "attributes":
			f.attributes, err = readAttributes(r, bad)
		case "messageId":
			f.id, err = stringMember(r, "message.messageId", bad)
		case "message_id":
			f.id2, err = stringMember(r, "message.message_id", bad)
		case "publishTime":
			f.publishTime, err = stringMember(r, "message.publishTime", bad)
		case "publish_time":
			f.publishTime2, err = stringMember(r, "message.publish_time", bad)
		case "orderingKey":
			f.orderingKey, err = stringMember(r, "message.orderingKey", bad)
		default:
			_, err = r.Skip()
		}
		if err != nil {
			return err
		}
	}
}

// readAttributes returns the span of the attributes object (nil when null
// or empty), after checking that every value is a string or null.
func readAttributes(r *debezium.JSONReader, bad *error) ([]byte, error) {
	span, err := r.Skip()
	if err != nil || span[0] == 'n' {
		return nil, err
	}
	if span[0] != '{' {
		setBad(bad, "message.attributes: want an object")
		return nil, nil
	}
	a := debezium.NewJSONReader(span)
	if err := a.Object(); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		_, more, err := a.Member(n)
		if err != nil {
			return nil, err
		}
		if !more {
			if n == 0 {
				return nil, nil
			}
			return span, nil
		}
		if _, err := stringMember(a, "message.attributes", bad); err != nil {
			return nil, err
		}
	}
}

// decodeData decodes the base64 message data into pb.data (empty when
// absent, as encoding/json left it).
func (f *envelopeFields) decodeData(pb *pushBuffers) error {
	pb.data = pb.data[:0]
	if f.data == nil {
		return nil
	}
	src := f.data[1 : len(f.data)-1]
	if bytes.IndexByte(src, '\\') >= 0 {
		// Escapes are legal JSON, never written by Pub/Sub: rare, so a copy.
		var err error
		if src, err = debezium.AppendUnquoted(nil, f.data); err != nil {
			return fmt.Errorf("message.data: %w", err)
		}
	}
	n := base64.StdEncoding.DecodedLen(len(src))
	if cap(pb.data) < n {
		pb.data = make([]byte, n)
	}
	n, err := decodeBase64(pb.data[:n], src)
	if err != nil {
		return fmt.Errorf("message.data: %w", err)
	}
	pb.data = pb.data[:n]
	return nil
}

// decodeBase64 is base64.StdEncoding.Decode, faster: segmentio/asm decodes
// the valid prefix with AVX2 (about 10x encoding/base64's speed, which was
// 8 % of the function's CPU at 3 KB events) and hands the rest to the
// standard decoder, so the output is the standard one. Its error offsets
// count from where the fast part stopped, so a bad input is decoded again
// by the standard decoder for an error that points at the right byte.
func decodeBase64(dst, src []byte) (int, error) {
	n, err := simd.StdEncoding.Decode(dst, src)
	if err != nil {
		return base64.StdEncoding.Decode(dst, src)
	}
	return n, nil
}

// stringMember skips a member value that must be a string or null and
// returns it (quotes included; nil for null).
func stringMember(r *debezium.JSONReader, name string, bad *error) ([]byte, error) {
	v, err := r.Skip()
	if err != nil {
		return nil, err
	}
	switch v[0] {
	case '"':
		return v, nil
	case 'n':
		return nil, nil
	}
	setBad(bad, name+": want a string")
	return nil, nil
}

// unquote returns the text of a string span, aliasing it unless it has
// escapes (metadata fields never do in practice).
func unquote(v []byte) []byte {
	if v == nil {
		return nil
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1]
	}
	s, _ := debezium.AppendUnquoted(nil, v)
	return s
}

func isIntOrNull(v []byte) bool {
	if v[0] == 'n' {
		return true
	}
	return v[0] != '"' && v[0] != '{' && v[0] != '[' && v[0] != 't' && v[0] != 'f' &&
		!bytes.ContainsAny(v, ".eE")
}

func setBad(bad *error, what string) {
	if *bad == nil {
		*bad = errors.New(what)
	}
}

// firstOf returns string span a unless it is absent or "", then b.
func firstOf(a, b []byte) []byte {
	if len(a) > len(`""`) {
		return a
	}
	return b
}
