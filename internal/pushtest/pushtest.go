// Package pushtest is the Pub/Sub push request body as encoding/json reads
// it, for tests: an independent reading that the hand-written envelope
// writers (pushbridge, bench) and parser (handler) are held to.
package pushtest

// Envelope is a push request body (a wrapped push).
type Envelope struct {
	// Message is nil when the body's message is null or absent.
	Message         *Message `json:"message"`
	Subscription    string   `json:"subscription"`
	DeliveryAttempt int      `json:"deliveryAttempt"`
}

// Message is the pushed message. Pub/Sub writes the id and the publish time
// twice, in both spellings.
type Message struct {
	Data         []byte            `json:"data"` // base64 in the body, decoded
	Attributes   map[string]string `json:"attributes"`
	MessageID    string            `json:"messageId"`
	MessageID2   string            `json:"message_id"`
	PublishTime  string            `json:"publishTime"`
	PublishTime2 string            `json:"publish_time"`
	OrderingKey  string            `json:"orderingKey"`
}
