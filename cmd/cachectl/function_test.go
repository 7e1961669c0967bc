package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// A built cachectl runs the local pipeline from a directory outside the
// module, through each delivery: it starts itself as the function or the
// worker instead of building one.
func TestBuiltCachectlRunsOutsideTheModule(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cachectl")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	for _, delivery := range []string{"push", "pull", "kafka"} {
		t.Run(delivery, func(t *testing.T) {
			_, prefix := testredis.Shared(t)
			run := exec.Command(bin, "run", "-delivery", delivery, "-redis", testRedisURL, "-prefix", prefix,
				"-events", "200", "-keys", "20", "-expected", "")
			run.Dir = t.TempDir()
			run.Env = append(os.Environ(), "CACHECTL_STATE_DIR="+t.TempDir())
			out, err := run.CombinedOutput()
			require.NoError(t, err, "%s", out)
			published, accounted, pending := summaryCounts(t, string(out))
			assert.Equal(t, 200, published)
			assert.Equal(t, published, accounted)
			assert.Zero(t, pending)
			assert.NotContains(t, string(out), "building the")
		})
	}
}
