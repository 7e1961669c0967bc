package localrun

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerdictNoteCountsAndCaps(t *testing.T) {
	var v Verdict
	require.True(t, v.OK())
	kinds := []string{"missing", "stale", "resurrected"}
	for i := range MaxListed + 10 {
		v.Note(Mismatch{Key: fmt.Sprintf("db.t:%d", i), Kind: kinds[i%3], Want: "w", Got: "g"})
	}
	assert.False(t, v.OK())
	assert.Equal(t, [3]int{10, 10, 10}, [3]int{v.Missing, v.Stale, v.Resurrected})
	require.Len(t, v.Mismatches, MaxListed, "the list is capped, the counts are not")
	assert.Equal(t, Mismatch{Key: "db.t:0", Kind: "missing", Want: "w", Got: "g"}, v.Mismatches[0])
	assert.Equal(t, "db.t:19", v.Mismatches[MaxListed-1].Key, "the first ones are kept")
	assert.Panics(t, func() { v.Note(Mismatch{Key: "db.t:x", Kind: "odd"}) })
}
