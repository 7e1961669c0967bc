package function

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/handler"
)

func TestMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	limited := filepath.Join(dir, "limited")
	require.NoError(t, os.WriteFile(limited, []byte("536870912\n"), 0o600))
	unlimited := filepath.Join(dir, "unlimited")
	require.NoError(t, os.WriteFile(unlimited, []byte("max\n"), 0o600))

	for _, tc := range []struct {
		setting, file string
		want          int64
	}{
		{"", limited, 128 << 20}, // a quarter of 512 MiB
		{"", unlimited, handler.DefaultMemoryBudget},
		{"", filepath.Join(dir, "absent"), handler.DefaultMemoryBudget},
		{"300", limited, 300 << 20}, // the setting wins
	} {
		got, err := memoryBudget(tc.setting, tc.file)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%q %s", tc.setting, filepath.Base(tc.file))
	}
	for _, bad := range []string{"0", "-1", "12MiB", "x"} {
		_, err := memoryBudget(bad, limited)
		assert.ErrorContains(t, err, "PUSH_MEMORY_MIB", bad)
	}
}
