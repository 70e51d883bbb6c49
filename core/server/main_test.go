package server

import (
	"os"
	"testing"

	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// TestMain runs the tests through pgtest, which starts a throwaway
// PostgreSQL for the tests that ask for one (and only then).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
