package memcachestore

import (
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/storetest"
)

// The apply rules, sequences and convergence of the design, shared with
// every store, on a private memcached.
func TestApplyRules(t *testing.T)      { storetest.Rules(t, privateBackend(t)) }
func TestApplySequences(t *testing.T)  { storetest.Sequences(t, privateBackend(t)) }
func TestApplyOnlyListed(t *testing.T) { storetest.OnlyListed(t, privateBackend(t)) }
func TestApplyInvalid(t *testing.T)    { storetest.Invalid(t, privateBackend(t)) }
func TestConvergence(t *testing.T)     { storetest.Convergence(t, privateBackend(t)) }

// TestMerging: concurrent Apply calls share read-then-write rounds.
func TestMerging(t *testing.T) {
	storetest.Merging(t, privateBackend(t), func(s storetest.Store) (int64, int64) {
		st := s.(*Store).Stats()
		return st.ApplyPipelines, st.ApplyCalls
	})
}
