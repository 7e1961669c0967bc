package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// testRedisURL is the machine's shared Redis; tests use their own prefixes.
const testRedisURL = "redis://127.0.0.1:6379/0"

// sharedRedis connects to the shared Redis and deletes the prefix's keys
// before and after the test (only those: other tests use the same server).
func sharedRedis(t *testing.T, prefix string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	require.NoError(t, rdb.Ping(context.Background()).Err(), "Redis must run on 127.0.0.1:6379 (make services)")
	clear := func() {
		keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
		require.NoError(t, err)
		if len(keys) > 0 {
			require.NoError(t, rdb.Del(context.Background(), keys...).Err())
		}
	}
	clear()
	t.Cleanup(func() {
		clear()
		rdb.Close()
	})
	return rdb
}

// runCmd runs cachectl with args and an environment of env only, and a
// state directory of the test's own unless env names one (a developer's
// own `make run` must neither see nor be seen by the tests).
func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	return runCmdCtx(t, context.Background(), env, args...)
}

// runCmdCtx is runCmd with a context (cancelled: as Ctrl-C would).
func runCmdCtx(t *testing.T, ctx context.Context, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	stateDir := t.TempDir()
	getenv := func(k string) string {
		if v, ok := env[k]; ok || k != "CACHECTL_STATE_DIR" {
			return v
		}
		return stateDir
	}
	var out, errOut bytes.Buffer
	err := run(ctx, args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// golden compares out with testdata/<command>/<name>/stdout (-update
// rewrites it; review the diff before committing).
func golden(t *testing.T, command, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", command, name, "stdout")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), out, "output differs from %s", path)
}
