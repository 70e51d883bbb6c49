package badgerstore

import (
	"log/slog"
	"testing"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/storetest"
)

// BenchmarkStore is the shared store benchmark suite (storetest) on a
// store with the server's settings (SyncWrites on, so every commit is
// flushed to disk).
func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), Options{Dir: b.TempDir(), SyncWrites: true, GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
