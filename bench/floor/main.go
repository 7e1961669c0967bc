// Command floor is the benchmark's empty-handler floor: a net/http server
// that does nothing with a push but read it. Its CPU per request under the
// push function's load is what any Go HTTP endpoint pays on this machine
// (request parsing, body read, response, system calls), so the function's
// CPU above it is the handler's own work.
//
// It serves on 127.0.0.1:$PORT: GET /healthz answers 204, and any POST has
// its whole body read into a reused buffer and answers 204. Nothing else.
package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	if err := run(os.Getenv("PORT")); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(port string) error {
	if port == "" {
		return fmt.Errorf("PORT is not set")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	// The same mux and server settings as the function's own server, so the
	// floor differs from it only in the handler.
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		buf := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, "reading body failed", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
