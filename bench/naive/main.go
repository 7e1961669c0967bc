// Command naive is the benchmark's baseline: the push handler people write
// by hand. It decodes the push envelope and the Debezium event into
// map[string]any with encoding/json, takes payload.after, and HSETs the row
// JSON under db.table:id with go-redis, one round trip per message and no
// version check (so duplicates and reordering can resurrect old rows).
//
// Environment: PORT (default 8080), REDIS_URL (default
// redis://127.0.0.1:6379/0), CACHE_PREFIX (prepended to every key).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "naive:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, _ []string, getenv func(string) string, stdout, _ io.Writer) error {
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	url := getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	ln, err := net.Listen("tcp", net.JoinHostPort("", port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &handler{rdb: rdb, prefix: getenv("CACHE_PREFIX")}, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, "naive: listening on", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// handler is the hand-written push endpoint.
type handler struct {
	rdb    *redis.Client
	prefix string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var env map[string]any
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
		http.Error(w, "bad envelope: "+err.Error(), http.StatusBadRequest)
		return
	}
	msg, _ := env["message"].(map[string]any)
	data, _ := msg["data"].(string)
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		http.Error(w, "bad data: "+err.Error(), http.StatusBadRequest)
		return
	}
	var event map[string]any
	if err := json.Unmarshal(raw, &event); err != nil {
		http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
		return
	}
	payload := event
	if p, ok := event["payload"].(map[string]any); ok {
		payload = p
	}
	after, _ := payload["after"].(map[string]any)
	source, _ := payload["source"].(map[string]any)
	if after == nil || source == nil {
		w.WriteHeader(http.StatusNoContent) // deletes and heartbeats: nothing to cache
		return
	}
	key := fmt.Sprintf("%s%v.%v:%v", h.prefix, source["db"], source["table"], after["id"])
	row, err := json.Marshal(after)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := h.rdb.HSet(r.Context(), key, "d", row).Err(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
