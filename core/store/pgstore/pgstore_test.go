package pgstore

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
	"github.com/toolgate/toolgate/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testLogger sends the store's logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testOptions are the options the tests open stores with: no periodic
// sweep unless a test asks for one, a short heartbeat.
func testOptions(t testing.TB) Options {
	return Options{Logger: testLogger(t), SweepInterval: -1, HeartbeatInterval: time.Second}
}

// TestConformance runs the shared suite. Each subtest gets a database of
// its own; reopening it is opening the same URL again.
func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) func() (store.Store, error) {
		url := pgtest.URL(t)
		return func() (store.Store, error) { return Open(t.Context(), url, testOptions(t)) }
	})
}
