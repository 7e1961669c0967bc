package mysqlrow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
)

// typesDDL has a column of every type the canonical encoding covers.
const typesDDL = `CREATE TABLE %s (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, yr YEAR, bo BOOL,
  de DECIMAL(12,4), fl FLOAT, db DOUBLE,
  ch CHAR(10), vc VARCHAR(100), tx TEXT, en ENUM('a','b','c'), st SET('x','y','z'),
  dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts TIMESTAMP(6) NULL,
  tm TIME, tm6 TIME(6),
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  b1 BIT(1), b10 BIT(10), b64 BIT(64),
  js JSON, geo GEOMETRY, flmd FLOAT(10,2)
) DEFAULT CHARSET=utf8mb4`

const typesInsert = `INSERT INTO %s VALUES
(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
 9223372036854775807, 18446744073709551615, 2024, TRUE,
 12345678.9, 1.2345678, 0.1,
 'abc', 'héllo wörld ✓ 日本語 🙂 "q" \\ <>&', 'line1\nline2\ttab', 'b', 'z,x',
 '2024-05-01', '2024-05-01 13:04:05', '2024-05-01 13:04:05.120', '2024-05-01 13:04:05.123456', '2024-05-01 13:04:05.5',
 '838:59:59', '-12:34:56.000789',
 x'01020300', x'DEADBEEF', x'00FF10',
 b'1', b'1000000001', b'1111111111111111111111111111111111111111111111111111111111111111',
 '{"b": 1,  "a": [1, 2.5, "x"], "n": null}', ST_GeomFromText('POINT(1 2)', 4326), 10.22),
(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
 -9223372036854775808, 0, 1901, FALSE,
 -0.05, -0.000123, -1.7976931348623157e308,
 '', 'ü', '', 'a', '',
 '1969-12-31', '1900-01-01 00:00:00', '1999-12-31 23:59:59.999', '2000-01-01 00:00:00.000001', '1970-01-01 00:00:01',
 '-838:59:59', '00:00:00.5',
 x'00000000', x'', x'',
 b'0', b'0', b'0',
 '[]', ST_GeomFromText('LINESTRING(0 0, 1.5 -2)'), -0.05),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL,
 NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL,
 NULL, NULL,
 NULL, NULL, NULL,
 NULL, NULL, NULL,
 NULL, NULL, NULL)`

// typesWant is the canonical JSON of typesInsert's rows, written from the
// design's table (section 2), not from the encoders.
var typesWant = map[int]string{
	1: `{"id":1,"ti":127,"tiu":255,"si":32767,"siu":65535,"mi":8388607,"miu":16777215,"i":2147483647,"iu":4294967295,` +
		`"bi":9223372036854775807,"biu":18446744073709551615,"yr":2024,"bo":1,` +
		`"de":"12345678.9000","fl":1.2345678,"db":0.1,` +
		`"ch":"abc","vc":"héllo wörld ✓ 日本語 🙂 \"q\" \\ <>&","tx":"line1\nline2\ttab","en":"b","st":"x,z",` +
		`"dt":"2024-05-01","dtm":"2024-05-01T13:04:05","dtm3":"2024-05-01T13:04:05.12","dtm6":"2024-05-01T13:04:05.123456","ts":"2024-05-01T13:04:05.5Z",` +
		`"tm":"838:59:59","tm6":"-12:34:56.000789",` +
		`"bn":"AQIDAA==","vb":"3q2+7w==","bl":"AP8Q",` +
		`"b1":1,"b10":513,"b64":18446744073709551615,` +
		`"js":{"b":1,"a":[1,2.5,"x"],"n":null},"geo":{"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":4326},"flmd":10.22}`,
	2: `{"id":2,"ti":-128,"tiu":0,"si":-32768,"siu":0,"mi":-8388608,"miu":0,"i":-2147483648,"iu":0,` +
		`"bi":-9223372036854775808,"biu":0,"yr":1901,"bo":0,` +
		`"de":"-0.0500","fl":-0.000123,"db":-1.7976931348623157e+308,` +
		`"ch":"","vc":"ü","tx":"","en":"a","st":"",` +
		`"dt":"1969-12-31","dtm":"1900-01-01T00:00:00","dtm3":"1999-12-31T23:59:59.999","dtm6":"2000-01-01T00:00:00.000001","ts":"1970-01-01T00:00:01Z",` +
		`"tm":"-838:59:59","tm6":"00:00:00.5",` +
		`"bn":"AAAAAA==","vb":"","bl":"",` +
		`"b1":0,"b10":0,"b64":0,` +
		`"js":[],"geo":{"wkb":"AQIAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPg/AAAAAAAAAMA=","srid":0},"flmd":-0.05}`,
	3: `{"id":3,"ti":null,"tiu":null,"si":null,"siu":null,"mi":null,"miu":null,"i":null,"iu":null,` +
		`"bi":null,"biu":null,"yr":null,"bo":null,"de":null,"fl":null,"db":null,` +
		`"ch":null,"vc":null,"tx":null,"en":null,"st":null,` +
		`"dt":null,"dtm":null,"dtm3":null,"dtm6":null,"ts":null,"tm":null,"tm6":null,` +
		`"bn":null,"vb":null,"bl":null,"b1":null,"b10":null,"b64":null,"js":null,"geo":null,"flmd":null}`,
}

func TestRowEveryType(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_types", typesDDL)
	exec(t, db, strings.ReplaceAll(typesInsert, "%s", "`test`.`"+name+"`"))
	r := mysqlrow.NewReader(db, cdc.DefaultConfig())
	ctx := context.Background()
	for id, want := range typesWant {
		row, err := r.Row(ctx, "test."+name, id)
		if err != nil {
			t.Fatalf("row %d: %v", id, err)
		}
		if string(row.JSON) != want {
			t.Errorf("row %d:\n got %s\nwant %s", id, row.JSON, want)
		}
		if !json.Valid(row.JSON) {
			t.Errorf("row %d is not valid JSON", id)
		}
		if wantKey := "test." + name + ":" + string(rune('0'+id)); row.Key != wantKey {
			t.Errorf("row %d key %q, want %q", id, row.Key, wantKey)
		}
	}
	if _, err := r.Row(ctx, "test."+name, 99); !errors.Is(err, mysqlrow.ErrNoRow) {
		t.Errorf("missing row: err %v, want ErrNoRow", err)
	}
}
