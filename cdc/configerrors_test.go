package cdc

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/configerrors/*.err from the errors ParseConfig returns")

// TestConfigErrorGolden parses each testdata/configerrors/<case>.yaml and
// compares the whole error with <case>.err: an operator reads the YAML path
// of the setting, never a Go type or only a line number.
func TestConfigErrorGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/configerrors/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			_, err = ParseConfig(data)
			require.Error(t, err)
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *updateGolden {
				require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
			}
			want, rerr := os.ReadFile(golden)
			require.NoError(t, rerr)
			assert.Equal(t, strings.TrimSuffix(string(want), "\n"), err.Error())
		})
	}
}
