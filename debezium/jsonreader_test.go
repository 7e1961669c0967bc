package debezium_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

func TestJSONReaderWalksNestedObjects(t *testing.T) {
	r := debezium.NewJSONReader([]byte(` {"a\u0062":{"x":[1,{"y":null}],"s":"t\"u"}, "n":-1.5e3 ,"z":"` + "ü" + `"} `))
	require.Equal(t, byte('{'), r.Peek())
	require.NoError(t, r.Object())

	key, ok, err := r.Member(0)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "ab", string(key), "escapes in keys are undone")
	require.Equal(t, byte('{'), r.Peek())
	require.NoError(t, r.Object())
	key, ok, err = r.Member(0)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "x", string(key))
	v, err := r.Skip()
	require.NoError(t, err)
	assert.Equal(t, `[1,{"y":null}]`, string(v))
	key, ok, err = r.Member(1)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "s", string(key))
	v, err = r.Skip()
	require.NoError(t, err)
	assert.Equal(t, `"t\"u"`, string(v), "strings keep their quotes and escapes")
	text, err := debezium.AppendUnquoted([]byte("pre:"), v)
	require.NoError(t, err)
	assert.Equal(t, `pre:t"u`, string(text))
	_, ok, err = r.Member(2)
	require.NoError(t, err)
	require.False(t, ok, "the inner object is done")

	key, ok, err = r.Member(1)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "n", string(key))
	v, err = r.Skip()
	require.NoError(t, err)
	assert.Equal(t, "-1.5e3", string(v))
	_, ok, err = r.Member(2)
	require.NoError(t, err)
	require.True(t, ok)
	v, err = r.Skip()
	require.NoError(t, err)
	assert.Equal(t, `"ü"`, string(v))
	_, ok, err = r.Member(3)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, r.End())
	assert.Equal(t, byte(0), r.Peek())
}

func TestJSONReaderErrors(t *testing.T) {
	for _, doc := range []string{`{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":"` + "\x01" + `"}`, `{"a":"\x"}`, `{"a":tru}`, `{"a":1`} {
		r := debezium.NewJSONReader([]byte(doc))
		require.NoError(t, r.Object(), doc)
		var err error
		for n := 0; err == nil; n++ {
			var ok bool
			if _, ok, err = r.Member(n); err == nil && ok {
				_, err = r.Skip()
			} else if err == nil {
				t.Fatalf("%s: read without error", doc)
			}
		}
		assert.Contains(t, err.Error(), "invalid JSON", doc)
	}
	r := debezium.NewJSONReader([]byte(`[1]`))
	assert.Error(t, r.Object(), "not an object")
	r = debezium.NewJSONReader([]byte(`{} {}`))
	require.NoError(t, r.Object())
	_, ok, err := r.Member(0)
	require.NoError(t, err)
	require.False(t, ok)
	assert.Error(t, r.End(), "a second value")

	_, err = debezium.AppendUnquoted(nil, []byte(`12`))
	assert.Error(t, err)
}
