package changegen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

func fixedClock() func() time.Time {
	t := time.Date(2024, 5, 1, 13, 4, 5, 0, time.UTC)
	return func() time.Time {
		t = t.Add(1500 * time.Microsecond)
		return t
	}
}

func drain(g *Generator, n int) []Message {
	var out []Message
	for len(out) < n {
		out = append(out, g.Next(n-len(out))...)
	}
	return out
}

func TestDeterministicFromSeed(t *testing.T) {
	opts := Options{Seed: 7, Schemas: true, Ordering: true, Keys: 50}
	opts.Now = fixedClock()
	a := drain(New(opts), 500)
	opts.Now = fixedClock()
	b := drain(New(opts), 500)
	require.Equal(t, a, b)
	opts.Seed, opts.Now = 8, fixedClock()
	c := drain(New(opts), 500)
	assert.NotEqual(t, a[len(a)-1].Data, c[len(c)-1].Data, "another seed, another stream")
}

func TestNextRespectsLimit(t *testing.T) {
	g := New(Options{Seed: 1, Keys: 20})
	for i := 0; i < 2000; i++ {
		limit := 1 + i%3
		msgs := g.Next(limit)
		require.NotEmpty(t, msgs)
		require.LessOrEqual(t, len(msgs), limit)
	}
}

// TestStreamShape checks the binlog bookkeeping: snapshot flags and position,
// growing versions, multi-row events, file rotation, primary-key changes.
func TestStreamShape(t *testing.T) {
	g := New(Options{Seed: 3, Keys: 100, SnapshotRows: 40})
	var snap []Message
	for g.Snapshotting() {
		snap = append(snap, g.Next(64)...)
	}
	require.Len(t, snap, 3*40)
	flags := make([]string, len(snap))
	for i, m := range snap {
		var ev struct {
			Source struct {
				Snapshot string `json:"snapshot"`
				ServerID int64  `json:"server_id"`
			} `json:"source"`
			Op string `json:"op"`
		}
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		assert.Equal(t, "r", ev.Op)
		assert.Equal(t, snap[0].Version, m.Version, "every snapshot read carries the snapshot position")
		assert.Zero(t, ev.Source.ServerID)
		flags[i] = ev.Source.Snapshot
	}
	assert.Equal(t, "first", flags[0])
	assert.Equal(t, "last", flags[len(flags)-1])
	assert.Equal(t, []string{"true"}, unique(flags[1:len(flags)-1]))

	prev := snap[0].Version
	var multiRow, pkChanges, rotations int
	lastSeq, _, _, _ := cdc.ParseVersion(string(prev))
	for i := 0; i < 20000; i++ {
		msgs := g.Next(10)
		require.Greater(t, msgs[0].Version, prev, "versions grow from event to event")
		for j, m := range msgs {
			if j > 0 {
				require.GreaterOrEqual(t, m.Version, msgs[j-1].Version)
			}
			if j > 0 && m.Version == msgs[j-1].Version {
				pkChanges++
				assert.Equal(t, cdc.OpDelete, msgs[j-1].Op)
				assert.Equal(t, cdc.OpCreate, m.Op)
				assert.NotEqual(t, msgs[j-1].Key, m.Key)
			}
			_, _, row, err := cdc.ParseVersion(string(m.Version))
			require.NoError(t, err)
			if row > 0 {
				multiRow++
			}
		}
		seq, _, _, _ := cdc.ParseVersion(string(msgs[0].Version))
		if seq != lastSeq {
			rotations++
			lastSeq = seq
		}
		prev = msgs[len(msgs)-1].Version
	}
	assert.Positive(t, multiRow)
	assert.Positive(t, pkChanges)
	assert.Positive(t, rotations, "the binlog file rotates")
}

func unique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TestDecodesToExpectedState feeds every message through the real decoder,
// keeps the newest row per key, and compares with the generator's own final
// state, computed from Go values by the cdc encoders: the generator's Debezium
// encodings and its expectations agree with the design's contract.
func TestDecodesToExpectedState(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       Options
		withConfig bool
		// registry: key columns and types from the tables CreateTables
		// makes in MariaDB, read back as cachectl schema sync does.
		registry bool
	}{
		{"schemas, ordering key", Options{Schemas: true, Ordering: true}, false, false},
		{"schemas, key schema", Options{Schemas: true, Ordering: true, KeySchemas: true}, false, false},
		{"schemas, no ordering key", Options{Schemas: true}, true, false},
		{"no schemas, config types", Options{Ordering: true}, true, false},
		{"compact profile, config keys and types", FormatCompact.Apply(Options{}), true, false},
		{"full profile", FormatFull.Apply(Options{}), false, false},
		{"compact profile, registry from MariaDB", FormatCompact.Apply(Options{Database: "changegen_registry"}), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Seed, tc.opts.Keys = 11, 60
			g := New(tc.opts)
			cfg := cdc.DefaultConfig()
			if tc.withConfig {
				var err error
				cfg, err = cdc.ParseConfig(g.CacheConfig(""))
				require.NoError(t, err)
			}
			dec := debezium.NewDecoder(cfg)
			if tc.registry {
				dec.SetRegistry(registryFromMariaDB(t, g))
			}
			type rec struct {
				v   cdc.Version
				row string
				del bool
			}
			state := map[string]rec{}
			for _, m := range drain(g, 4000) {
				var key []byte
				if m.OrderingKey != "" {
					key = []byte(m.OrderingKey)
				}
				ch, err := dec.Decode(m.Data, key)
				require.NoError(t, err, "%s", m.Data)
				require.Equal(t, m.Key, ch.Key)
				require.Equal(t, m.Version, ch.Version)
				require.Equal(t, m.Op, ch.Op)
				require.Equal(t, m.Table, ch.Table)
				if ch.Version > state[ch.Key].v {
					state[ch.Key] = rec{v: ch.Version, row: string(ch.Row), del: ch.Op == cdc.OpDelete}
				}
			}
			exp := g.Expected()
			require.Len(t, state, len(exp))
			for _, e := range exp {
				got := state[e.Key]
				require.Equal(t, e.Version, got.v, e.Key)
				require.Equal(t, e.Deleted, got.del, e.Key)
				if !e.Deleted {
					require.Equal(t, string(e.Row), got.row, e.Key)
				}
			}
		})
	}
}

// registryFromMariaDB creates g's tables in MariaDB afresh and reads their
// registry entries back from information_schema.
func registryFromMariaDB(t *testing.T, g *Generator) *cdc.Registry {
	db, err := mysqlrow.Open("root@tcp(127.0.0.1:3306)/")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	for _, q := range append(g.DropTables(), g.CreateTables()...) {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	tables, err := schema.Read(context.Background(), db, g.Tables(), time.Now())
	require.NoError(t, err)
	return &cdc.Registry{Tables: tables}
}

func TestMalformedIsRejected(t *testing.T) {
	for _, opts := range []Options{{Schemas: true}, FormatCompact.Apply(Options{})} {
		opts.Seed, opts.Keys = 5, 30
		g := New(opts)
		drain(g, 300)
		before := g.Expected()
		cfg, err := cdc.ParseConfig(g.CacheConfig(""))
		require.NoError(t, err)
		dec := debezium.NewDecoder(cfg)
		kinds := map[string]int{}
		for i := 0; i < 200; i++ {
			m := g.Malformed()
			require.Empty(t, m.Key)
			_, err := dec.Decode(m.Data, nil)
			require.Error(t, err, "%s", m.Data)
			kinds[strings.SplitN(err.Error(), ":", 3)[1]]++
		}
		assert.GreaterOrEqual(t, len(kinds), 3, "several kinds of breakage: %v", kinds)
		assert.Equal(t, before, g.Expected(), "malformed messages change no expected state")
	}
}

// TestCompactShape pins the flattened row byte for byte: the row in table
// order, then __deleted, then the add.fields in the profile's order; deletes
// carry the before image; no ordering key and no attributes.
func TestCompactShape(t *testing.T) {
	g := New(FormatCompact.Apply(Options{Seed: 4, Keys: 10, SnapshotRows: 1, Now: fixedClock()}))
	cfg, err := cdc.ParseConfig(g.CacheConfig(""))
	require.NoError(t, err)
	dec := debezium.NewDecoder(cfg)
	var create, del *Message
	for create == nil || del == nil {
		for _, m := range g.Next(5) {
			if m.Table != "inventory.customers" {
				continue
			}
			switch m.Op {
			case cdc.OpCreate:
				create = &m
			case cdc.OpDelete:
				del = &m
			}
		}
	}
	for _, m := range []*Message{create, del} {
		assert.Empty(t, m.OrderingKey)
		assert.Nil(t, m.Attributes)
		var row map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(m.Data, &row))
		seq, pos, r, err := cdc.ParseVersion(string(m.Version))
		require.NoError(t, err)
		deleted := `"false"`
		if m.Op == cdc.OpDelete {
			deleted = `"true"`
		}
		tail := fmt.Sprintf(`,"__deleted":%s,"__op":"%c","__source_file":"mysql-bin.%06d","__source_pos":%d,"__source_row":%d,"__source_ts_ms":%s,"__db":"inventory","__table":"customers","__ts_ms":%s}`,
			deleted, m.Op, seq, pos, r, row["__source_ts_ms"], row["__ts_ms"])
		assert.True(t, strings.HasSuffix(string(m.Data), tail), "%s\nwant suffix %s", m.Data, tail)
		assert.True(t, strings.HasPrefix(string(m.Data), `{"id":`+strings.TrimPrefix(m.Key, "inventory.customers:")+`,"first_name":`), "%s", m.Data)
		ch, err := dec.Decode(m.Data, nil)
		require.NoError(t, err)
		assert.Equal(t, string(row["__ts_ms"]), strconv.FormatInt(ch.EventMs, 10), "__ts_ms gives the pipeline lag")
	}
}

// TestAttributes: the full profile sends Debezium's four context headers on
// every message and the key-change header on both halves of a primary-key
// change, each value a JsonConverter schema envelope; the compact profile
// sends none.
func TestAttributes(t *testing.T) {
	g := New(FormatFull.Apply(Options{Seed: 6, Keys: 40}))
	var pkDelete, pkCreate bool
	for i := 0; i < 3000; i++ {
		msgs := g.Next(10)
		for j, m := range msgs {
			require.Equal(t, `{"schema":{"type":"string","optional":false},"payload":"dbserver1"}`, m.Attributes[headerLogicalName])
			require.Equal(t, `{"schema":{"type":"string","optional":false},"payload":"0"}`, m.Attributes[headerTaskID])
			require.Equal(t, `{"schema":{"type":"string","optional":false},"payload":"mysql"}`, m.Attributes[headerConnector])
			require.Regexp(t, `^\{"schema":\{"type":"string","optional":false\},"payload":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\}$`, m.Attributes[headerRunID])
			pk := j+1 < len(msgs) && msgs[j+1].Version == m.Version && m.Op == cdc.OpDelete ||
				j > 0 && msgs[j-1].Version == m.Version && m.Op == cdc.OpCreate
			if !pk {
				require.Len(t, m.Attributes, 4, "%v", m.Attributes)
				continue
			}
			require.Len(t, m.Attributes, 5)
			var other Message
			var name string
			if m.Op == cdc.OpCreate {
				other, name, pkCreate = msgs[j-1], headerOldKey, true
			} else {
				other, name, pkDelete = msgs[j+1], headerNewKey, true
			}
			var h struct {
				Schema struct {
					Name string `json:"name"`
				} `json:"schema"`
				Payload json.RawMessage `json:"payload"`
			}
			require.NoError(t, json.Unmarshal([]byte(m.Attributes[name]), &h), "%v", m.Attributes)
			assert.Equal(t, "dbserver1."+other.Table+".Key", h.Schema.Name)
			var otherEv struct{ Payload map[string]json.RawMessage }
			require.NoError(t, json.Unmarshal(other.Data, &otherEv))
			var img map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(otherEv.Payload[map[cdc.Op]string{cdc.OpCreate: "after", cdc.OpDelete: "before"}[other.Op]], &img))
			var key map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(h.Payload, &key))
			for col, v := range key {
				assert.Equal(t, string(img[col]), string(v), "the header names the other half's key")
			}
		}
	}
	assert.True(t, pkDelete && pkCreate, "the stream has primary-key changes")

	c := New(FormatCompact.Apply(Options{Seed: 6, Keys: 40}))
	for i := 0; i < 3000; i++ {
		for _, m := range c.Next(10) {
			require.Nil(t, m.Attributes)
		}
	}
}

func TestExpectedRoundTrip(t *testing.T) {
	g := New(Options{Seed: 9, Keys: 40})
	drain(g, 1000)
	var buf bytes.Buffer
	require.NoError(t, g.WriteExpected(&buf))
	got, err := ReadExpected(&buf)
	require.NoError(t, err)
	require.Equal(t, g.Expected(), got)
	var deleted int
	for _, e := range got {
		if e.Deleted {
			deleted++
		}
	}
	assert.Positive(t, deleted)
	assert.Less(t, deleted, len(got))

	_, err = ReadExpected(strings.NewReader(`{"key":"a.b:1","version":"x"}`))
	assert.ErrorContains(t, err, "entry 1")
}

func TestJavaFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		bits int
		want string
	}{
		{0, 64, "0.0"},
		{math.Copysign(0, -1), 64, "-0.0"},
		{1, 64, "1.0"},
		{-12.5, 64, "-12.5"},
		{100, 32, "100.0"},
		{0.001, 64, "0.001"},
		{0.0001, 64, "1.0E-4"},
		{1234567, 64, "1234567.0"},
		{1e7, 64, "1.0E7"},
		{1.5e300, 64, "1.5E300"},
		{float64(float32(0.1)), 32, "0.1"},
		{float64(float32(3e10)), 32, "3.0E10"},
		{math.MaxFloat64, 64, "1.7976931348623157E308"},
		{1e-5, 64, "1.0E-5"},
	} {
		assert.Equal(t, tc.want, string(appendJavaFloat(nil, tc.f, tc.bits)), "%v", tc.f)
	}
}

func TestTwosComplement(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want []byte
	}{
		{0, []byte{0}},
		{1, []byte{1}},
		{127, []byte{0x7f}},
		{128, []byte{0, 0x80}},
		{-1, []byte{0xff}},
		{-128, []byte{0x80}},
		{-129, []byte{0xff, 0x7f}},
		{1230, []byte{0x04, 0xce}},
	} {
		got := twosComplement(big.NewInt(tc.n))
		assert.Equal(t, tc.want, got, "%d", tc.n)
		// Read back as Java's BigInteger(byte[]) does.
		back := new(big.Int).SetBytes(got)
		if got[0]&0x80 != 0 {
			back.Sub(back, new(big.Int).Lsh(big.NewInt(1), uint(8*len(got))))
		}
		assert.Equal(t, tc.n, back.Int64())
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(Options{Seed: 1, Schemas: true, Ordering: true})
	var bytes int
	for b.Loop() {
		for _, m := range g.Next(8) {
			bytes += len(m.Data)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/event")
}

// TestAllKeysCoversEveryWrittenKey: every key a long run writes (key changes
// included) is among AllKeys, which lists Keys distinct keys per table.
func TestAllKeysCoversEveryWrittenKey(t *testing.T) {
	g := New(Options{Seed: 5, Keys: 30})
	all := g.AllKeys()
	set := map[string]bool{}
	for _, k := range all {
		set[k] = true
	}
	assert.Len(t, set, len(g.Tables())*30, "distinct, Keys per table")
	drain(g, 3000)
	for _, e := range g.Expected() {
		assert.True(t, set[e.Key], "written key %s not in AllKeys", e.Key)
	}
}
