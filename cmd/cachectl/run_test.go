package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunThenVerify runs the local pipeline for 600 changes (building the
// function binary) in each message format and verifies the cache against
// the generator's state; the compact format's messages are billed a small
// fraction of the full format's.
func TestRunThenVerify(t *testing.T) {
	const prefix = "cachectl-test-run:"
	sharedRedis(t, prefix)
	bytes := map[string]int{}
	for _, format := range []string{"full", "compact"} {
		expected := filepath.Join(t.TempDir(), "expected.jsonl")
		out, errOut, err := runCmd(t, nil, "run", "-redis", testRedisURL, "-prefix", prefix, "-events", "600",
			"-keys", "40", "-expected", expected, "-bridge", "", "-format", format)
		require.NoError(t, err, "%s\n%s", out, errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.GreaterOrEqual(t, len(lines), 3, out)
		summary := regexp.MustCompile(`^summary: published=600 applied=(\d+) stale=(\d+) ignored=0 rejected=0 pending=0 ` +
			`lag_p50_ms=\d+\.\d lag_p99_ms=\d+\.\d events_per_sec=\d+ bytes_per_event=(\d+)$`)
		m := summary.FindStringSubmatch(lines[len(lines)-2])
		require.NotNil(t, m, "%s summary line: %q", format, lines[len(lines)-2])
		applied, _ := strconv.Atoi(m[1])
		stale, _ := strconv.Atoi(m[2])
		if format == "full" {
			assert.Equal(t, 600, applied, "ordered delivery, no duplicates: every change applies")
		} else {
			assert.Equal(t, 600, applied+stale, "without ordering a change may arrive after a newer one")
		}
		bytes[format], _ = strconv.Atoi(m[3])
		assert.Contains(t, out, "\rpublished=", "progress refreshes on one line")
		assert.Contains(t, out, format+" messages")

		vout, verr, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", prefix, "-expected", expected)
		require.NoError(t, err, "%s%s", vout, verr)
		assert.Contains(t, vout, "missing=0 stale=0 resurrected=0", format)
	}
	assert.Positive(t, bytes["compact"])
	assert.Less(t, bytes["compact"]*5, bytes["full"], "compact messages are a fraction of full ones: %v", bytes)
}

func TestRunRejectsBadFlags(t *testing.T) {
	_, _, err := runCmd(t, nil, "run", "-events", "-1")
	assert.ErrorContains(t, err, "-events")
	_, _, err = runCmd(t, nil, "run", "extra")
	assert.ErrorContains(t, err, "unexpected arguments")
	_, _, err = runCmd(t, nil, "run", "-format", "avro")
	assert.ErrorContains(t, err, "avro")
	_, _, err = runCmd(t, nil, "run", "-redis", "redis://127.0.0.1:1/0", "-events", "1")
	assert.ErrorContains(t, err, "services.sh")
}
