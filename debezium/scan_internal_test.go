package debezium

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
)

// special8 must flag a word exactly when one of its bytes is not plain.
func TestSpecial8MatchesPlain(t *testing.T) {
	check := func(w [8]byte) {
		want := false
		for _, c := range w {
			want = want || !plain[c]
		}
		if got := special8(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("special8(%q) = %v, want %v", w[:], got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			w := [8]byte{'a', 'b', 0x7f, 0x80, 0xff, ' ', '~', '!'}
			w[pos] = byte(c)
			check(w)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rnd.Uint64())
		check(w)
	}
}

// skipDoc must end a string where str does, whatever escapes precede the
// quote, and at every alignment of the eight-byte steps.
func TestSkipDocStringsAgreeWithStr(t *testing.T) {
	for _, inner := range []string{``, `a`, `\\`, `\"`, `\\\"`, `\\\\`, `abcdefgh\"ijklmnop`, `0123456789abcdef\\`,
		"ü\u00e9 \\n tab\\t", `\u0022 quoted`} {
		for pad := range 10 {
			str := `"` + strings.Repeat("x", pad) + inner + `"`
			doc := `{"k":` + str + `,"n":1}`
			s := scanner{b: []byte(doc)}
			span, err := s.skipDoc()
			if err != nil || string(span) != doc {
				t.Fatalf("skipDoc(%s) = %q, %v", doc, span, err)
			}
			ss := scanner{b: []byte(str + `,`)}
			if _, _, err := ss.str(); err != nil || ss.i != len(str) {
				t.Fatalf("str(%s) ended at %d, %v", str, ss.i, err)
			}
		}
	}
	s := scanner{b: []byte(`{"k":"never closed\"}`)}
	if _, err := s.skipDoc(); err == nil {
		t.Fatal("unterminated string accepted")
	}
}
