package pgstore

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
	"github.com/toolgate/toolgate/core/store/storetest"
)

// BenchmarkStore is the shared store benchmark suite (storetest), so the
// two backends can be compared on one machine; each sub-benchmark runs
// against a fresh database of the server pgtest provides (a local cluster
// with fsync off unless $TOOLGATE_TEST_POSTGRES_URL says otherwise), so
// they measure round trips and query work, not disk flushes.
func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store {
		s, err := Open(b.Context(), pgtest.URL(b), Options{SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkSettle measures what waiting for the other replicas
// (Options.AckTimeout, barrier.go) adds to the operations that wait: the
// same operation with the wait off (wait=off) and on, with this store
// alone on the database (stores=1) and with a second one watching
// (stores=2).
func BenchmarkSettle(b *testing.B) {
	for _, n := range []int{1, 2} {
		for _, wait := range []bool{false, true} {
			name := "stores=" + strconv.Itoa(n) + "/wait=off"
			if wait {
				name = "stores=" + strconv.Itoa(n) + "/wait=on"
			}
			open := func(b *testing.B) *Store {
				url := pgtest.URL(b)
				opts := Options{SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)}
				if !wait {
					opts.AckTimeout = -1
				}
				var s *Store
				for i := range n {
					x, err := Open(b.Context(), url, opts)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { x.Close() })
					x.Watch(b.Context(), func(store.Change) {})
					if i == 0 {
						s = x
					}
				}
				if err := s.CreateClient(b.Context(), store.Client{ID: "c"}); err != nil {
					b.Fatal(err)
				}
				return s
			}
			b.Run("RevokeGrant/"+name, func(b *testing.B) {
				s := open(b)
				for i := range b.N {
					if err := s.CreateGrant(b.Context(), store.Grant{ID: "g" + strconv.Itoa(i), ClientID: "c", UserID: "u", CreatedAt: time.Now()}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if err := s.RevokeGrant(b.Context(), "g"+strconv.Itoa(i)); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("UpdateGrant/"+name, func(b *testing.B) {
				s := open(b)
				if err := s.CreateGrant(b.Context(), store.Grant{ID: "g", ClientID: "c", UserID: "u", Role: "0", CreatedAt: time.Now()}); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.UpdateGrant(b.Context(), "g", func(g *store.Grant) error {
						n, err := strconv.Atoi(g.Role)
						g.Role = strconv.Itoa(n + 1)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
