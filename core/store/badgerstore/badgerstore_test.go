package badgerstore

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/storetest"
)

// testLogger sends the store's logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func factory(opts Options) storetest.Factory {
	return func(t *testing.T) func() (store.Store, error) {
		o := opts
		o.Dir = t.TempDir()
		o.Logger = testLogger(t)
		return func() (store.Store, error) { return Open(t.Context(), o) }
	}
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, factory(Options{SyncWrites: true}))
}

func TestConformanceEncrypted(t *testing.T) {
	storetest.RunTests(t, factory(Options{SyncWrites: true, EncryptionKey: bytes.Repeat([]byte{7}, 32)}))
}
