package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestProcCPUGrowsWithWork(t *testing.T) {
	ticks, err := ClockTicks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before, err := ProcCPU(os.Getpid(), ticks)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged this process at least 50 ms more.
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		now, err := ProcCPU(os.Getpid(), ticks)
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stuck at %v after 10 s of spinning (%d)", now, x)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	line := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0\n"
	got, err := parseProcStat([]byte(line), 100)
	if err != nil || got != 3*time.Second {
		t.Fatalf("got %v, %v; want 3s", got, err)
	}
	if _, err := parseProcStat([]byte("1234 (x) S 1"), 100); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestRedisCPU(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	got, err := RedisCPU(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	if got <= 0 {
		t.Fatalf("redis CPU %v", got)
	}
	if d, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9\r\n"); err != nil || d != 3750*time.Millisecond {
		t.Fatalf("parse: %v %v", d, err)
	}
	if _, err := parseRedisCPU("used_cpu_sys:1\r\n"); err == nil {
		t.Fatal("INFO without used_cpu_user accepted")
	}
}
