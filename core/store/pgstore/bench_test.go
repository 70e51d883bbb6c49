package pgstore

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// The benchmarks mirror badgerstore's (bench_test.go there) so the two
// backends can be compared on one machine; each runs against a fresh
// database of the server pgtest provides (a local cluster with fsync off
// unless $TOOLGATE_TEST_POSTGRES_URL says otherwise), so they measure
// round trips and query work, not disk flushes.

// benchStore opens a store with one client and grant.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), pgtest.URL(b), Options{SweepInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.CreateClient(b.Context(), store.Client{ID: "c"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateGrant(b.Context(), store.Grant{ID: "g", ClientID: "c", UserID: "u", Email: "u@example.com", Role: "0", Permissions: []string{"image_generation"}, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchTokens are the tokens an exchange of code issues.
func benchTokens(code string) []store.Token {
	exp := time.Now().Add(24 * time.Hour)
	return []store.Token{
		{Hash: store.HashSecret(code + "/access"), Kind: store.AccessToken, GrantID: "g", ClientID: "c", CreatedAt: time.Now(), ExpiresAt: exp},
		{Hash: store.HashSecret(code + "/refresh"), Kind: store.RefreshToken, GrantID: "g", ClientID: "c", CreatedAt: time.Now(), ExpiresAt: exp},
	}
}

func BenchmarkGetToken(b *testing.B) {
	s := benchStore(b)
	code := store.HashSecret("code")
	if err := s.CreateAuthCode(b.Context(), store.AuthCode{CodeHash: code, GrantID: "g"}); err != nil {
		b.Fatal(err)
	}
	tokens := benchTokens(code)
	if _, err := s.ExchangeAuthCode(b.Context(), code, tokens, time.Time{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetToken(b.Context(), tokens[0].Hash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExchangeAuthCode(b *testing.B) {
	s := benchStore(b)
	var codes []string
	for i := range b.N {
		code := store.HashSecret("code" + strconv.Itoa(i))
		if err := s.CreateAuthCode(b.Context(), store.AuthCode{CodeHash: code, GrantID: "g", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		codes = append(codes, code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.ExchangeAuthCode(b.Context(), codes[i], benchTokens(codes[i]), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotateRefreshToken is one refresh: the old refresh token marked
// used, the grant updated, a new access and refresh token stored.
func BenchmarkRotateRefreshToken(b *testing.B) {
	s := benchStore(b)
	code := store.HashSecret("code")
	if err := s.CreateAuthCode(b.Context(), store.AuthCode{CodeHash: code, GrantID: "g"}); err != nil {
		b.Fatal(err)
	}
	tokens := benchTokens(code)
	if _, err := s.ExchangeAuthCode(b.Context(), code, tokens, time.Time{}); err != nil {
		b.Fatal(err)
	}
	old := tokens[1].Hash
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		next := benchTokens("rotation" + strconv.Itoa(i))
		if _, err := s.RotateRefreshToken(b.Context(), old, next, func(g *store.Grant) error {
			g.UpdatedAt = time.Now()
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		old = next[1].Hash
		i++
	}
}

func BenchmarkUpdateGrant(b *testing.B) {
	s := benchStore(b)
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
}

func benchAuditRecord(i int) store.AuditRecord {
	return store.AuditRecord{
		Time: time.Now(), UserID: "user_01", OrganizationID: "org_01", ClientID: "c",
		Plugin: "imagegen", Tool: "generate_image", Decision: "allow", Outcome: "ok",
		Duration: time.Duration(i) * time.Microsecond, ExpiresAt: time.Now().Add(24 * time.Hour),
	}
}

// BenchmarkAppendAudit is one record per write.
func BenchmarkAppendAudit(b *testing.B) {
	s := benchStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.AppendAudit(b.Context(), benchAuditRecord(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
}

// BenchmarkAppendAuditBatch64 is 64 records per write; ns/record is what
// one record costs.
func BenchmarkAppendAuditBatch64(b *testing.B) {
	const batch = 64
	s := benchStore(b)
	rs := make([]store.AuditRecord, batch)
	b.ReportAllocs()
	for b.Loop() {
		for i := range rs {
			rs[i] = benchAuditRecord(i)
		}
		if _, err := s.AppendAuditBatch(b.Context(), rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
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
