// Package localrun runs the whole pipeline on one machine: the change
// generator publishes Debezium messages to an in-process Pub/Sub, the push
// bridge POSTs them to the push function running as a real child process,
// and the function applies them to Redis (or, with delivery pull, the
// worker as a child process streams them from the Pub/Sub fake; with
// delivery kafka it consumes them from a Kafka fake, kfake). Run drives it for `cachectl run`
// (`make run`), with a progress line refreshed every 500 ms and a final
// summary; the pieces (Function, Scrape, Produce) are also what the chaos
// test composes to restart the function and Redis mid-stream.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// FunctionPackage is the import path of the push function's command.
const FunctionPackage = "github.com/cloudsql-cache/cloudsql-cache/function/cmd"

// WorkerPackage is the import path of the pull (and Kafka) worker's command.
const WorkerPackage = "github.com/cloudsql-cache/cloudsql-cache/worker/cmd"

// BuildFunction compiles the push function (without the race detector, so
// it runs at production speed) into dir and returns the binary's path. It
// must run inside the module's source tree.
func BuildFunction(ctx context.Context, dir string) (string, error) {
	return build(ctx, dir, "function", FunctionPackage)
}

// BuildWorker compiles the worker as BuildFunction compiles the function.
func BuildWorker(ctx context.Context, dir string) (string, error) {
	return build(ctx, dir, "worker", WorkerPackage)
}

func build(ctx context.Context, dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, "cloudsql-cache-"+name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Function is the push function (or the worker: both serve /healthz and
// /metrics on PORT) as a child process on a fixed port, so it can be killed
// and started again at the same address.
type Function struct {
	// Name names the process in errors; "" is "function".
	Name string
	// Bin is the function binary (BuildFunction), and Args its arguments
	// (a cachectl binary serves the function as "cachectl function").
	Bin  string
	Args []string
	// Port is the port it serves on.
	Port int
	// Env is added to the process environment (REDIS_URL, CACHE_CONFIG, ...).
	Env []string
	// Output receives the process's stdout and stderr; nil discards them.
	Output io.Writer

	mu     sync.Mutex    // guards cmd and exited
	cmd    *exec.Cmd     // the running process, nil when stopped
	exited chan struct{} // closed when cmd has been waited for
}

func (f *Function) name() string { return firstNonEmpty(f.Name, "function") }

// URL returns the function's base URL; the push handler is at "/".
func (f *Function) URL() string { return "http://127.0.0.1:" + strconv.Itoa(f.Port) + "/" }

// Start starts the process and waits until /healthz answers.
func (f *Function) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.cmd != nil {
		f.mu.Unlock()
		return fmt.Errorf("%s: already running", f.name())
	}
	cmd := exec.Command(f.Bin, f.Args...)
	cmd.Env = append(append(os.Environ(), f.Env...), "PORT="+strconv.Itoa(f.Port))
	// A process group of its own: Ctrl-C in the terminal reaches the run,
	// which drains through the function before stopping it, not the
	// function itself.
	cmd.SysProcAttr = childProcAttr()
	out := f.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("%s: %w", f.name(), err)
	}
	exited := make(chan struct{})
	f.cmd, f.exited = cmd, exited
	f.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		resp, err := client.Get(f.URL() + "healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			f.reap()
			return fmt.Errorf("%s: exited during start-up (%s)", f.name(), cmd.ProcessState)
		case <-deadline:
			return errors.Join(fmt.Errorf("%s: /healthz did not answer within 30s", f.name()), f.Kill())
		case <-ctx.Done():
			return errors.Join(ctx.Err(), f.Kill())
		case <-tick.C:
		}
	}
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits for it.
func (f *Function) Kill() error { return f.signal(syscall.SIGKILL) }

// Stop ends the process gracefully (SIGTERM: it finishes in-flight pushes and
// flushes its checkpoint) and waits for it.
func (f *Function) Stop() error { return f.signal(syscall.SIGTERM) }

func (f *Function) signal(sig syscall.Signal) error {
	f.mu.Lock()
	cmd, exited := f.cmd, f.exited
	f.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %w", f.name(), err)
	}
	<-exited
	f.reap()
	return nil
}

func (f *Function) reap() {
	f.mu.Lock()
	f.cmd, f.exited = nil, nil
	f.mu.Unlock()
}
