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
