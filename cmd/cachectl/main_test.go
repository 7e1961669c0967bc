package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestExitCodes: help is a success (0) on stdout; a command line that
// cannot run is a usage error (2); a failure while running is 1.
func TestExitCodes(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		out, errOut, err := runCmd(t, nil, args...)
		assert.NoError(t, err, args)
		assert.Equal(t, 0, exitCode(err))
		assert.Empty(t, errOut, args)
		golden(t, "help", "usage", out)
	}
	for _, cmd := range []string{"run", "status", "replay", "verify", "load", "cost", "function", "worker"} {
		for _, h := range []string{"-h", "-help", "--help"} {
			_, errOut, err := runCmd(t, nil, cmd, h)
			assert.Equal(t, 0, exitCode(err), "%s %s: %v", cmd, h, err)
			assert.Contains(t, errOut, "Usage of "+cmd, "%s %s prints its flags", cmd, h)
		}
		_, errOut, err := runCmd(t, nil, "help", cmd)
		assert.Equal(t, 0, exitCode(err), "help %s", cmd)
		assert.Contains(t, errOut, "Usage of "+cmd)

		_, _, err = runCmd(t, nil, cmd, "-no-such-flag")
		assert.Equal(t, 2, exitCode(err), "%s -no-such-flag: %v", cmd, err)
	}
	for _, sub := range []string{"sync", "show", "yaml"} {
		_, errOut, err := runCmd(t, nil, "schema", sub, "-h")
		assert.Equal(t, 0, exitCode(err), "schema %s -h", sub)
		assert.Contains(t, errOut, "Usage of schema "+sub)
		_, _, err = runCmd(t, nil, "schema", sub, "-no-such-flag")
		assert.Equal(t, 2, exitCode(err), "schema %s -no-such-flag", sub)
	}
	_, _, err := runCmd(t, nil, "schema", "frob")
	assert.Equal(t, 2, exitCode(err))
	_, errOut, err := runCmd(t, nil)
	assert.Equal(t, 2, exitCode(err), "no command")
	assert.Contains(t, errOut, "usage: cachectl <command>")
	_, _, err = runCmd(t, nil, "frobnicate")
	assert.EqualError(t, err, `unknown command "frobnicate"`)
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, nil, "status", "-redis", "redis://127.0.0.1:1/0", "-prefix", "cachectl-test-exit:")
	assert.Error(t, err)
	assert.Equal(t, 1, exitCode(err), "a failure while running")
}
