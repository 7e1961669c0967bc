package debezium_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCase is one recorded message of testdata/debezium.
type testCase = debeziumcases.Case

func loadCases(t testing.TB) map[string]*testCase {
	return debeziumcases.Load(t, "../testdata/debezium")
}

func decoderFor(t testing.TB, tc *testCase) *debezium.Decoder {
	cfg := cdc.DefaultConfig()
	if tc.Config != "" {
		var err error
		cfg, err = cdc.ParseConfig([]byte(tc.Config))
		require.NoError(t, err)
	}
	return debezium.NewDecoder(cfg)
}

// compactJSON compacts the expected row; the files are indented.
func compactJSON(t *testing.T, raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, raw))
	return buf.Bytes()
}

func TestRecordedEvents(t *testing.T) {
	for name, tc := range loadCases(t) {
		t.Run(name, func(t *testing.T) {
			d := decoderFor(t, tc)
			got, err := d.Decode(tc.Message(), tc.MessageKey())
			if tc.WantError != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.WantError)
				assert.Equal(t, cdc.Change{Table: got.Table}, got, "an error keeps only the table")
				if db, table, ok := strings.Cut(got.Table, "."); ok {
					assert.Contains(t, string(tc.Message()), `"`+db+`"`, "the table is the message's")
					assert.Contains(t, string(tc.Message()), `"`+table+`"`, "the table is the message's")
				} else {
					assert.Empty(t, got.Table)
				}
				if tc.ValueText == nil {
					_, err = d.Decode(compactJSON(t, tc.Message()), tc.MessageKey())
					assert.ErrorContains(t, err, tc.WantError, "compact form")
				}
				return
			}
			require.NoError(t, err)
			w := tc.Want
			want := cdc.Change{
				Op: cdc.Op(w.Op[0]), Table: w.Table, Key: w.Key, Row: compactJSON(t, w.Row),
				Version: cdc.Version(w.Version), Server: w.Server, ServerID: w.ServerID,
				CommitMs: w.CommitMs, EventMs: w.EventMs, Snapshot: w.Snapshot, Reason: w.Reason,
			}
			assert.Equal(t, string(want.Row), string(got.Row), "row")
			assert.Equal(t, want, got)
			if got.Row != nil {
				assert.True(t, json.Valid(got.Row), "row is valid JSON")
			}
			// Decoding again (schema now cached) gives the same change, and so
			// does the compact form Debezium Server actually publishes (where a
			// cached schema is recognised without scanning it).
			again, err := d.Decode(tc.Message(), tc.MessageKey())
			require.NoError(t, err)
			assert.Equal(t, got, again)
			compact := compactJSON(t, tc.Message())
			for range 2 {
				again, err = d.Decode(compact, tc.MessageKey())
				require.NoError(t, err)
				assert.Equal(t, got, again)
			}
		})
	}
}

// The schema-enveloped and the schemaless-with-declared-types events of the
// same row must give byte-identical rows: that is the point of the types.
func TestSchemaAndDeclaredTypesAgree(t *testing.T) {
	cases := loadCases(t)
	withSchema, declared := cases["types-schema"], cases["types-noschema-config"]
	got1, err := decoderFor(t, withSchema).Decode(withSchema.Message(), withSchema.MessageKey())
	require.NoError(t, err)
	got2, err := decoderFor(t, declared).Decode(declared.Message(), declared.MessageKey())
	require.NoError(t, err)
	var full, typed map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got1.Row, &full))
	require.NoError(t, json.Unmarshal(got2.Row, &typed))
	require.NotEmpty(t, typed)
	for col, v := range typed {
		assert.Equal(t, string(full[col]), string(v), col)
	}
}

func TestSchemaParsedOncePerDistinctSchema(t *testing.T) {
	cases := loadCases(t)
	d := debezium.NewDecoder(nil)
	a, b := cases["tutorial-update"], cases["types-schema"]
	for range 5 {
		_, err := d.Decode(a.Message(), a.MessageKey())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), debezium.SchemaCompilations(d))
	for range 5 {
		_, err := d.Decode(b.Message(), b.MessageKey())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(2), debezium.SchemaCompilations(d))
	_, err := d.Decode(a.Message(), a.MessageKey())
	require.NoError(t, err)
	assert.Equal(t, int64(2), debezium.SchemaCompilations(d))
	// A different schema with an equal payload is compiled separately.
	other := bytes.Replace(a.Message(), []byte(`"first_name"`), []byte(`"first_name" `), -1)
	_, err = d.Decode(other, a.MessageKey())
	require.NoError(t, err)
	assert.Equal(t, int64(3), debezium.SchemaCompilations(d))
}

func TestConcurrentDecode(t *testing.T) {
	cases := loadCases(t)
	d := debezium.NewDecoder(nil)
	names := []string{"tutorial-update", "types-schema", "mysqldoc-create", "flatten-schema-create", "types-noschema-passthrough"}
	want := map[string]cdc.Change{}
	for _, n := range names {
		ch, err := d.Decode(cases[n].Message(), cases[n].MessageKey())
		require.NoError(t, err)
		want[n] = ch
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(names))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				n := names[(g+i)%len(names)]
				ch, err := d.Decode(cases[n].Message(), cases[n].MessageKey())
				if err != nil || !assert.ObjectsAreEqual(want[n], ch) {
					errs <- n
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for n := range errs {
		t.Errorf("concurrent decode of %s differed", n)
	}
}

// The row returned must not alias the decoder's scratch space.
func TestRowNotReused(t *testing.T) {
	cases := loadCases(t)
	d := debezium.NewDecoder(nil)
	a, b := cases["tutorial-update"], cases["mysqldoc-create"]
	first, err := d.Decode(a.Message(), a.MessageKey())
	require.NoError(t, err)
	saved := string(first.Row)
	_, err = d.Decode(b.Message(), b.MessageKey())
	require.NoError(t, err)
	assert.Equal(t, saved, string(first.Row))
}

// The envelope's member order and spacing do not matter, and a message that
// starts like a cached schema but does not end like an envelope is not
// mistaken for one.
func TestEnvelopeVariants(t *testing.T) {
	tc := loadCases(t)["tutorial-update"]
	d := debezium.NewDecoder(nil)
	var env struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(compactJSON(t, tc.Message()), &env))
	schema, payload := compactJSON(t, env.Schema), compactJSON(t, env.Payload)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	want, err := d.Decode(join([]byte(`{"schema":`), schema, []byte(`,"payload":`), payload, []byte(`}`)), tc.MessageKey())
	require.NoError(t, err)
	require.Equal(t, cdc.OpUpdate, want.Op)
	for _, v := range [][]byte{
		join([]byte(`{"payload":`), payload, []byte(`,"schema":`), schema, []byte(`}`)),
		join([]byte(`{"schema":`), schema, []byte(" ,\n \"payload\" : "), payload, []byte(" }\n")),
	} {
		got, err := d.Decode(v, tc.MessageKey())
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for v, msg := range map[string]string{
		`{"schema":` + string(schema) + `,"payload":` + string(payload) + `}x`:                "data after the JSON value",
		`{"schema":` + string(schema) + `,"payload":` + string(payload):                       "invalid JSON",
		`{"schema":` + string(schema) + `,"payload":` + string(payload) + `,"extra":1}`:       "binlog position",
		`{"schema":` + string(schema) + `,"payload":[1]}`:                                     "payload is not a JSON object",
		`{"schema":` + string(schema) + `,"payload":null}`:                                    "",
		`{"schema":` + string(schema[:len(schema)-1]) + `,"payload":` + string(payload) + `}`: "invalid JSON",
	} {
		got, err := d.Decode([]byte(v), tc.MessageKey())
		if msg == "" {
			require.NoError(t, err)
			assert.Equal(t, "tombstone", got.Reason)
			continue
		}
		assert.ErrorContains(t, err, msg, v[len(v)-40:])
	}
}
