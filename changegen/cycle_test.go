package changegen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// TestCycleDecodesToItsRows runs the orders Cycle through the real decoder,
// with and without the schema envelope: keys cycle in order, a key's first
// change is a create and later ones updates whose before image is the
// previous after image, versions grow from the start position, and every
// decoded row equals the canonical JSON the cdc encoders make of the model's
// values.
func TestCycleDecodesToItsRows(t *testing.T) {
	for _, schemas := range []bool{true, false} {
		const keys, start = 7, 4000
		c, err := NewCycle(Options{Seed: 2, Server: "bench", Database: "shop", Schemas: schemas, Ordering: true, Keys: keys, Now: fixedClock()}, "orders", start)
		require.NoError(t, err)
		var cfgYAML strings.Builder
		cfgYAML.WriteString("tables:\n")
		writeTableConfig(&cfgYAML, c.t)
		cfg, err := cdc.ParseConfig([]byte(cfgYAML.String()))
		require.NoError(t, err)
		dec := debezium.NewDecoder(cfg)

		prev := cdc.NewVersion(firstSeq, start-1, 0)
		lastAfter := map[string]json.RawMessage{}
		for i := range 3 * keys {
			m := c.Next()
			require.Equal(t, "bench.shop.orders", m.Topic)
			require.Equal(t, "shop.orders", m.Table)
			require.Equal(t, fmt.Sprintf(`{"id":%d}`, i%keys+1), m.OrderingKey)
			require.Greater(t, m.Version, prev, "change %d", i)
			prev = m.Version
			want := cdc.OpUpdate
			if i < keys {
				want = cdc.OpCreate
			}
			require.Equal(t, want, m.Op, "change %d", i)

			ch, err := dec.Decode(m.Data, []byte(m.OrderingKey))
			require.NoError(t, err, "%s", m.Data)
			require.Equal(t, m.Key, ch.Key)
			require.Equal(t, m.Version, ch.Version)
			require.Equal(t, m.Op, ch.Op)
			require.Equal(t, string(appendRow(nil, c.t.table, c.t.rows[i%keys], appendCanonical)), string(ch.Row))

			var ev struct{ Before, After json.RawMessage }
			payload := m.Data
			if schemas {
				var env struct{ Payload json.RawMessage }
				require.NoError(t, json.Unmarshal(m.Data, &env))
				payload = env.Payload
			}
			require.NoError(t, json.Unmarshal(payload, &ev))
			if i < keys {
				require.Equal(t, "null", string(ev.Before))
			} else {
				require.Equal(t, string(lastAfter[m.Key]), string(ev.Before), "the before image is the last after image")
			}
			lastAfter[m.Key] = ev.After
		}

		next, err := NewCycle(Options{Seed: 3, Server: "bench", Database: "shop", Keys: keys}, "orders", c.Pos())
		require.NoError(t, err)
		assert.Greater(t, next.Next().Version, prev, "a Cycle started at Pos applies over the last one")
	}
}

func TestNewCycleRejectsUnknownTable(t *testing.T) {
	_, err := NewCycle(Options{}, "nope", 0)
	assert.ErrorContains(t, err, `no table "nope"`)
	c, err := NewCycle(Options{Keys: 3, Ordering: true}, "order_items", 0)
	require.NoError(t, err, "the inventory tables cycle too")
	assert.Equal(t, `{"order_id":10001,"line":1}`, c.Next().OrderingKey)
}
