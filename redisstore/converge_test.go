package redisstore

import (
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
)

func TestConvergence(t *testing.T) { storetest.Convergence(t, sharedBackend(t)) }
