package svcenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedisProblemNamesTheCause: each kind of ping failure gets the
// sentence that says what to fix, and a password is never repeated.
func TestRedisProblemNamesTheCause(t *testing.T) {
	opts := &redis.Options{Addr: "10.0.0.5:6379", DB: 3, Password: "s3cret"}
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("dial tcp 10.0.0.5:6379: connect: connection refused"), "REDIS_URL: nothing answers at 10.0.0.5:6379"},
		{fmt.Errorf("ping: %w", context.DeadlineExceeded), "REDIS_URL: no answer from 10.0.0.5:6379 within 2s"},
		{errors.New("WRONGPASS invalid username-password pair"), "refuses the user or password"},
		{errors.New("NOAUTH Authentication required."), "needs a password"},
		{errors.New("ERR DB index is out of range"), "has no database 3"},
		{errors.New("tls: failed to verify certificate: x509: unknown authority"), "REDIS_URL/REDIS_CA_CERT: TLS with 10.0.0.5:6379 failed"},
	} {
		got := RedisProblem(opts, c.err)
		if !strings.Contains(got, c.want) {
			t.Errorf("RedisProblem(%q) = %q, want it to contain %q", c.err, got, c.want)
		}
		if strings.Contains(got, opts.Password) {
			t.Errorf("RedisProblem(%q) = %q repeats the password", c.err, got)
		}
	}
}
