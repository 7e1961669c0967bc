package debezium

import "errors"

// JSONReader reads JSON objects member by member, in place, with the
// decoder's own scanner: keys and values come back as spans of the input,
// validated as they are passed, and nothing is built. It exists for the push
// handler's envelope, whose base64 data is most of the request and must be
// neither copied nor unquoted by a general-purpose decoder.
//
// Errors are syntax errors of the input; the reader is not usable after one.
type JSONReader struct {
	s scanner
}

// NewJSONReader returns a reader at the start of b.
func NewJSONReader(b []byte) *JSONReader { return &JSONReader{s: scanner{b: b}} }

// Object consumes the '{' that starts the next value, which must be an
// object; read its members with Member.
func (r *JSONReader) Object() error { return r.s.begin('{') }

// Member reads the key of the next member of the innermost object entered,
// after which the member's value is next; n is the number of members read
// before. ok is false once the object's closing '}' has been consumed. The
// key aliases the input unless it had escapes.
func (r *JSONReader) Member(n int) (key []byte, ok bool, err error) { return r.s.member(n) }

// Skip passes over the next value and returns its span: a string keeps its
// quotes, so the first byte tells the value's type.
func (r *JSONReader) Skip() ([]byte, error) { return r.s.value() }

// Peek returns the first byte of the next value without consuming it ('{',
// '[', '"', 'n', 't', 'f', '-' or a digit for valid input), or 0 at the end.
func (r *JSONReader) Peek() byte { return r.s.peek() }

// End checks that nothing but white space is left.
func (r *JSONReader) End() error {
	if !r.s.atEnd() {
		return r.s.errorf("data after the top-level value")
	}
	return nil
}

// AppendUnquoted appends the text of a JSON string value, given as the span
// Skip returned (quotes included), to dst with its escapes undone, as
// encoding/json would.
func AppendUnquoted(dst, str []byte) ([]byte, error) {
	if len(str) < 2 || str[0] != '"' || str[len(str)-1] != '"' {
		return dst, errNotString
	}
	return appendUnescaped(dst, str[1:len(str)-1])
}

var errNotString = errors.New("not a JSON string")
