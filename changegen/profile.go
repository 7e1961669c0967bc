package changegen

import "fmt"

// Format names one of the two Debezium Server profiles that
// debezium-server/application.properties ships (Terraform's message_format).
type Format string

// The message formats.
const (
	// FormatFull: schema envelopes, Pub/Sub ordering on (the key in the
	// ordering key), and every header Debezium sends by default.
	FormatFull Format = "full"
	// FormatCompact: schemaless rows flattened by ExtractNewRecordState,
	// ordering off, no attributes; key and types come from the column
	// registry.
	FormatCompact Format = "compact"
)

// ParseFormat returns the format called s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatFull, FormatCompact:
		return f, nil
	}
	return "", fmt.Errorf("message format %q: want full or compact", s)
}

// Apply returns opts with the fields the format's Debezium settings decide
// (Schemas, KeySchemas, Ordering, Flatten, ContextHeaders, KeyChangeHeaders)
// set as that profile sets them; the other fields are kept.
func (f Format) Apply(opts Options) Options {
	full := f != FormatCompact
	opts.Schemas = full
	opts.KeySchemas = false // both profiles: debezium.format.key.schemas.enable=false
	opts.Ordering = full
	opts.Flatten = !full
	// The compact profile sets extended.headers.enabled=false and drops the
	// key-change headers with a DropHeaders transform: the function needs
	// neither, and Pub/Sub bills every attribute byte.
	opts.ContextHeaders = full
	opts.KeyChangeHeaders = full
	return opts
}
