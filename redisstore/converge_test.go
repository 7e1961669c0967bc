package redisstore

import (
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
)

func TestConvergence(t *testing.T) { storetest.Convergence(t, sharedBackend(t)) }

// TestMerging: concurrent Apply calls share script calls.
func TestMerging(t *testing.T) {
	storetest.Merging(t, sharedBackend(t), func(s storetest.Store) (int64, int64) {
		st := s.(*Store).Stats()
		return st.ApplyPipelines, st.ApplyCalls
	})
}
