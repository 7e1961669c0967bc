package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClockTicks returns the kernel's clock ticks per second (getconf CLK_TCK),
// the unit of utime and stime in /proc/<pid>/stat.
func ClockTicks(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return 0, fmt.Errorf("bench: getconf CLK_TCK: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bench: getconf CLK_TCK printed %q", out)
	}
	return n, nil
}

// ProcCPU returns the user + system CPU time process pid has used, all its
// threads included (/proc/<pid>/stat utime + stime), at ticks per second.
func ProcCPU(pid, ticks int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return parseProcStat(b, ticks)
}

// parseProcStat reads utime and stime (fields 14 and 15) from a
// /proc/<pid>/stat line; fields are counted after the parenthesised command
// name, which may itself hold spaces.
func parseProcStat(b []byte, ticks int) (time.Duration, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc stat line without command name: %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14 -> f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc stat line too short: %q", s)
	}
	var total int64
	for _, x := range f[11:13] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc stat field %q: %w", x, err)
		}
		total += n
	}
	return time.Duration(total) * time.Second / time.Duration(ticks), nil
}

// RedisCPU returns the CPU time the Redis server has used since it started:
// used_cpu_user + used_cpu_sys from INFO cpu (every thread, every client:
// on a shared server other clients' work is included).
func RedisCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("bench: INFO cpu: %w", err)
	}
	return parseRedisCPU(info)
}

func parseRedisCPU(info string) (time.Duration, error) {
	var total float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: INFO cpu %s=%q: %w", k, v, err)
		}
		total += x
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("bench: INFO cpu lacks used_cpu_user or used_cpu_sys")
	}
	return time.Duration(total * float64(time.Second)), nil
}
