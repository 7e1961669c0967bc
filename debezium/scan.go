package debezium

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

// scanner walks one JSON text. It validates what it passes over (strings,
// numbers, literals, nesting), so spans it returns are valid JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

// atEnd reports whether only white space is left.
func (s *scanner) atEnd() bool { return s.peek() == 0 && s.i >= len(s.b) }

// begin consumes the opening byte c ('{' or '[').
func (s *scanner) begin(c byte) error {
	if s.peek() != c {
		return s.errorf("want %q", c)
	}
	s.i++
	return nil
}

// member reads the key of the next member of an object whose '{' has been
// consumed; n is the number of members already read. ok is false once the
// closing '}' has been consumed. The key aliases the input unless it had
// escapes.
func (s *scanner) member(n int) (key []byte, ok bool, err error) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, false, nil
	}
	if n > 0 {
		if c != ',' {
			return nil, false, s.errorf("want ',' or '}' in object")
		}
		s.i++
		c = s.peek()
	}
	if c != '"' {
		return nil, false, s.errorf("want an object key")
	}
	raw, esc, err := s.str()
	if err != nil {
		return nil, false, err
	}
	if esc {
		if raw, err = appendUnescaped(nil, raw); err != nil {
			return nil, false, err
		}
	}
	if s.peek() != ':' {
		return nil, false, s.errorf("want ':' after object key")
	}
	s.i++
	return raw, true, nil
}

// element advances to the next element of an array whose '[' has been
// consumed; ok is false once the closing ']' has been consumed.
func (s *scanner) element(n int) (ok bool, err error) {
	c := s.peek()
	if c == ']' {
		s.i++
		return false, nil
	}
	if n > 0 {
		if c != ',' {
			return false, s.errorf("want ',' or ']' in array")
		}
		s.i++
	}
	return true, nil
}

// plain marks the bytes a string may hold without a closer look: not the
// quote, the backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string at the cursor and returns its raw content (between the
// quotes) and whether it holds escapes. Raw control characters are errors.
func (s *scanner) str() (raw []byte, esc bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.errorf("want a string")
	}
	b := s.b
	start := s.i + 1
	for i := start; ; i++ {
		i += plainPrefix(b[i:])
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				s.i = len(b)
				return nil, false, s.errorf("unterminated string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex4(b[i+1:i+5]) {
					s.i = i
					return nil, false, s.errorf("bad \\u escape")
				}
				i += 4
			default:
				s.i = i
				return nil, false, s.errorf("bad escape \\%c", b[i])
			}
		default:
			s.i = i
			return nil, false, s.errorf("control character in string")
		}
	}
	s.i = len(b)
	return nil, false, s.errorf("unterminated string")
}

// plainPrefix returns how many bytes at the start of b are plain. Most
// strings are short; long ones (notes, JSON columns, the push envelope's
// base64 data) are mostly plain bytes, so after 64 of them the run is
// checked with vectorised searches for its end instead, and words of eight
// bytes at a time for control characters.
func plainPrefix(b []byte) int {
	i := 0
	for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
		if i == 64 {
			if n := plainRun(b[i:]); n > 0 {
				i += n
				break
			}
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// plainRun returns the length of b up to its first quote when that is all
// plain bytes, else 0 (the caller goes on byte by byte).
func plainRun(b []byte) int {
	n := bytes.IndexByte(b, '"')
	if n < 0 || bytes.IndexByte(b[:n], '\\') >= 0 {
		return 0
	}
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := func(x uint64) uint64 { return (x - 0x20*ones) &^ x & highs } // nonzero: a byte < 0x20
	i := 0
	for ; i+32 <= n; i += 32 {
		w := b[i : i+32]
		if ctl(binary.LittleEndian.Uint64(w))|ctl(binary.LittleEndian.Uint64(w[8:]))|
			ctl(binary.LittleEndian.Uint64(w[16:]))|ctl(binary.LittleEndian.Uint64(w[24:])) != 0 {
			return 0
		}
	}
	for ; i < n; i++ {
		if b[i] < 0x20 {
			return 0
		}
	}
	return n
}

// special8 reports whether any of the eight bytes in x is not plain: a
// control character, '"' or '\\' (the bit tricks "has a byte less than n" and
// "has a zero byte", exact about whether one exists).
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := (x - 0x20*ones) &^ x & highs
	q := x ^ '"'*ones
	q = (q - ones) &^ q & highs
	bs := x ^ '\\'*ones
	bs = (bs - ones) &^ bs & highs
	return ctl|q|bs != 0
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// number reads a number at the cursor and returns its text; isInt is true
// when it has neither fraction nor exponent.
func (s *scanner) number() (text []byte, isInt bool, err error) {
	s.ws()
	start, i := s.i, s.i
	b := s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return nil, false, s.errorf("want a number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.errorf("want digits after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, false, s.errorf("want digits in exponent")
		}
	}
	s.i = i
	return b[start:i], isInt, nil
}

// literal consumes true, false or null and returns it.
func (s *scanner) literal() ([]byte, error) {
	s.ws()
	for _, w := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
			s.i += len(w)
			return s.b[s.i-len(w) : s.i], nil
		}
	}
	return nil, s.errorf("unexpected input")
}

// null consumes a null if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// skipDoc skips the object or array at the cursor checking only that its
// strings end and its brackets balance, and returns its span. It is for the
// parts of a message that are validated elsewhere or not used: the schema (a
// cache hit is byte-identical to a schema encoding/json already validated, a
// miss is validated by compiling it) and the row images, source and the like,
// which are scanned in full when they are decoded. The schema is most of a
// message, so this saves most of the scanning.
func (s *scanner) skipDoc() ([]byte, error) {
	s.ws()
	b, start := s.b, s.i
	depth := 0
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '"':
			// Eight bytes at a time where no quote or backslash can be
			// (special8 also stops at control characters, which the byte
			// loop then passes): the payload is mostly strings.
			i++
			for {
				for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
					i += 8
				}
				for i < len(b) && b[i] != '"' && b[i] != '\\' {
					i++
				}
				if i >= len(b) {
					s.i = len(b)
					return nil, s.errorf("unterminated string")
				}
				if b[i] == '"' {
					break
				}
				i += 2 // past an escape and the byte it escapes
			}
		case '{', '[':
			depth++
			if depth > maxDepth {
				s.i = i
				return nil, s.errorf("nested deeper than %d", maxDepth)
			}
		case '}', ']':
			depth--
			if depth <= 0 {
				s.i = i + 1
				return b[start:s.i], nil
			}
		}
	}
	s.i = len(b)
	return nil, s.errorf("unexpected end of input")
}

// value skips one value and returns its span.
func (s *scanner) value() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.errorf("nested deeper than %d", maxDepth)
	}
	switch c := s.peek(); {
	case c == '{':
		s.i++
		for n := 0; ; n++ {
			_, ok, err := s.member(n)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		s.i++
		for n := 0; ; n++ {
			ok, err := s.element(n)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, _, err := s.number()
		return err
	case c == 0 && s.i >= len(s.b):
		return s.errorf("unexpected end of input")
	default:
		_, err := s.literal()
		return err
	}
}

var errBadUTF16 = errors.New("invalid \\u escape")

// appendUnescaped appends the decoded text of a string's raw content (as
// returned by str, so escapes are well formed). Lone surrogates become U+FFFD,
// as encoding/json does.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, errBadUTF16
		}
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+4 >= len(raw) || !isHex4(raw[i+1:i+5]) {
				return dst, errBadUTF16
			}
			r := rune(hex4(raw[i+1 : i+5]))
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' && isHex4(raw[i+3:i+7]) {
					if d := utf16.DecodeRune(r, rune(hex4(raw[i+3:i+7]))); d != utf8.RuneError {
						r2 = d
						i += 6
					}
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst, nil
}

func hex4(b []byte) uint16 {
	var n uint16
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		n = n<<4 | uint16(c)
	}
	return n
}
