package testlog

import (
	"fmt"
	"sync"
	"testing"
)

func TestBufferConcurrentWritesAndLines(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "{\"n\":%d,\"msg\":\"x\"}\n", i)
		}()
	}
	wg.Wait()
	lines, err := b.JSONLines()
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 20 || b.Count(`"msg":"x"`) != 20 {
		t.Fatalf("got %d lines, %d matches; want 20 each", len(lines), b.Count(`"msg":"x"`))
	}
	b.Write([]byte("not json\n"))
	if _, err := b.JSONLines(); err == nil {
		t.Fatal("a line that is not JSON was accepted")
	}
}
