package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunThenVerify runs the local pipeline for 600 changes (building the
// function binary) and verifies the cache against the generator's state.
func TestRunThenVerify(t *testing.T) {
	const prefix = "cachectl-test-run:"
	sharedRedis(t, prefix)
	expected := filepath.Join(t.TempDir(), "expected.jsonl")
	out, errOut, err := runCmd(t, nil, "run", "-redis", testRedisURL, "-prefix", prefix, "-events", "600",
		"-keys", "40", "-expected", expected, "-bridge", "")
	require.NoError(t, err, "%s\n%s", out, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out)
	summary := regexp.MustCompile(`^summary: published=600 applied=(\d+) stale=(\d+) ignored=0 rejected=0 pending=0 ` +
		`lag_p50_ms=\d+\.\d lag_p99_ms=\d+\.\d events_per_sec=\d+$`)
	m := summary.FindStringSubmatch(lines[len(lines)-2])
	require.NotNil(t, m, "summary line: %q", lines[len(lines)-2])
	assert.Equal(t, "600", m[1], "no duplicates or reordering here: every change applies")
	assert.Contains(t, out, "\rpublished=", "progress refreshes on one line")

	vout, verr, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", prefix, "-expected", expected)
	require.NoError(t, err, "%s%s", vout, verr)
	assert.Contains(t, vout, "missing=0 stale=0 resurrected=0")
}

func TestRunRejectsBadFlags(t *testing.T) {
	_, _, err := runCmd(t, nil, "run", "-events", "-1")
	assert.ErrorContains(t, err, "-events")
	_, _, err = runCmd(t, nil, "run", "extra")
	assert.ErrorContains(t, err, "unexpected arguments")
	_, _, err = runCmd(t, nil, "run", "-redis", "redis://127.0.0.1:1/0", "-events", "1")
	assert.ErrorContains(t, err, "services.sh")
}
