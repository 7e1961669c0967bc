package localrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A cut is a consistent moment of a running pipeline: the producer stops
// publishing, every published message is acknowledged, and the generator's
// state at that moment is written to a file. The cache then must equal the
// file, so `cachectl verify` during a run compares like with like. The run
// holds the cut (publishes nothing) until the reader lets go.
type cut struct {
	path    string
	ready   chan error    // receives nil once the state is written, or why it is not
	release chan struct{} // closed by the reader when it is done
}

// cutSettleTimeout bounds how long a cut waits for the backlog to drain.
const cutSettleTimeout = 30 * time.Second

// cutHoldLimit bounds how long one cut may hold the producer, should the
// reader hang.
const cutHoldLimit = 5 * time.Minute

// serveCut answers GET /cut: it asks the producer for a cut, writes one line
// "ok <path>" (or "error <reason>") as soon as the state is written, and
// holds the cut until the client closes the connection.
func serveCut(cuts chan<- *cut, dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp(dir, "cut-*.jsonl")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f.Close()
		defer os.Remove(f.Name())
		c := &cut{path: f.Name(), ready: make(chan error, 1), release: make(chan struct{})}
		defer close(c.release)
		select {
		case cuts <- c:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := <-c.ready; err != nil {
			fmt.Fprintf(w, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		fmt.Fprintf(w, "ok %s\n", c.path)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(cutHoldLimit):
		}
	}
}

// hold runs on the producer's goroutine (the generator is its alone): it
// waits until settled reports the backlog empty, writes the state, and
// holds until the reader releases the cut or ctx ends.
func (c *cut) hold(ctx context.Context, settled func() bool, write func(path string) error) {
	deadline := time.Now().Add(cutSettleTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !settled() {
		if time.Now().After(deadline) {
			c.ready <- fmt.Errorf("the pipeline did not drain within %s", cutSettleTimeout)
			return
		}
		select {
		case <-ctx.Done():
			c.ready <- errors.New("the run is stopping")
			return
		case <-c.release:
			return
		case <-tick.C:
		}
	}
	if err := write(c.path); err != nil {
		c.ready <- err
		return
	}
	c.ready <- nil
	select {
	case <-ctx.Done():
	case <-c.release:
	}
}

// RequestCut asks the run whose control endpoint is at control (State.Control)
// for a cut. It returns the file holding the expected state at the cut and a
// function that releases it; the run publishes nothing until then.
func RequestCut(ctx context.Context, control string) (path string, release func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(control, "/")+"/cut", nil)
	if err != nil {
		cancel()
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return "", nil, fmt.Errorf("cut: %w", err)
	}
	release = func() { cancel(); resp.Body.Close() }
	if resp.StatusCode != http.StatusOK {
		release()
		return "", nil, fmt.Errorf("cut: %s", resp.Status)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		release()
		return "", nil, fmt.Errorf("cut: %w", err)
	}
	status, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if status != "ok" || !filepath.IsAbs(rest) {
		release()
		return "", nil, fmt.Errorf("cut: %s", rest)
	}
	return rest, release, nil
}
