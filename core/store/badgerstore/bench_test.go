package badgerstore

import (
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// benchStore opens a store with the server's settings (SyncWrites on) and
// one client and grant.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), Options{Dir: b.TempDir(), SyncWrites: true, GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
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

func BenchmarkGetToken(b *testing.B) {
	s := benchStore(b)
	code := store.HashSecret("code")
	if err := s.CreateAuthCode(b.Context(), store.AuthCode{CodeHash: code, GrantID: "g"}); err != nil {
		b.Fatal(err)
	}
	tokens := crashTokens(code, "g")
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
		if _, err := s.ExchangeAuthCode(b.Context(), codes[i], crashTokens(codes[i], "g"), time.Time{}); err != nil {
			b.Fatal(err)
		}
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

// BenchmarkAppendAudit is one record per commit, as the auditor wrote
// before batching.
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

// BenchmarkAppendAuditBatch64 is 64 records per commit; ns/record is
// what one record costs.
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
