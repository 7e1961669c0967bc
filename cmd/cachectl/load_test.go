package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// loadServer records the Debezium positions it receives and answers 503 to
// every message whose data does not decode.
func loadServer(t *testing.T) (*httptest.Server, func() []uint64) {
	var mu sync.Mutex
	var pos []uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Message struct{ Data string } }
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		data, err := base64.StdEncoding.DecodeString(env.Message.Data)
		var ev struct {
			Payload struct{ Source struct{ Pos uint64 } }
		}
		if err != nil || json.Unmarshal(data, &ev) != nil || ev.Payload.Source.Pos == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		pos = append(pos, ev.Payload.Source.Pos)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]uint64(nil), pos...)
	}
}

var loadLine = regexp.MustCompile(`^load: (closed loop c=\d+|open loop rate=\d+/s) events=(\d+) events_per_sec=\d+ p50_ms=[0-9.]+ p99_ms=[0-9.]+ status=(\S+)\n$`)

func TestLoadClosedLoop(t *testing.T) {
	srv, positions := loadServer(t)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"load", "-url", srv.URL, "-c", "4", "-n", "300", "-start-pos", "500"}, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	m := loadLine.FindStringSubmatch(out.String())
	if m == nil || m[1] != "closed loop c=4" || m[2] != "300" || m[3] != "204:300" {
		t.Fatalf("output %q", out.String())
	}
	pos := positions()
	if len(pos) != 300 {
		t.Fatalf("server got %d events", len(pos))
	}
	seen := map[uint64]bool{}
	for _, p := range pos {
		if p < 500 || seen[p] {
			t.Fatalf("position %d repeated or below the start", p)
		}
		seen[p] = true
	}
}

func TestLoadOpenLoopSchemaless(t *testing.T) {
	srv, _ := loadServer(t) // schemaless events have no "payload": every one is answered 503
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"load", "-url", srv.URL, "-rate", "2000", "-n", "100", "-schema=false"}, func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "100 of 100 requests not answered 2xx") {
		t.Fatalf("err %v", err)
	}
	m := loadLine.FindStringSubmatch(out.String())
	if m == nil || m[1] != "open loop rate=2000/s" || m[3] != "503:100" {
		t.Fatalf("output %q", out.String())
	}
}

func TestLoadRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"load", "-n", "0"}, {"load", "-c", "-1"}, {"load", "extra"}, {"load", "-keys", "0"}} {
		if err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
