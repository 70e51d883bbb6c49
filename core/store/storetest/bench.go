package storetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// RunBenchmarks times the store operations on toolgate's hot and
// sign-in paths, the same way for every backend so they can be compared
// on one machine. open returns a fresh, empty store for one
// sub-benchmark (the backend closes it at b's cleanup). The
// sub-benchmarks: GetToken (the uncached part of a bearer verification),
// ExchangeAuthCode, RotateRefreshToken (one refresh), UpdateGrant,
// AppendAudit (one record per write) and, when the backend is a
// store.AuditBatcher, AppendAuditBatch64 (ns/record is what one record of
// a 64-record batch costs).
func RunBenchmarks(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("GetToken", func(b *testing.B) {
		s := benchStore(b, open)
		tokens := benchExchange(b, s, "code")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetToken(b.Context(), tokens[0].Hash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ExchangeAuthCode", func(b *testing.B) {
		s := benchStore(b, open)
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
	})
	b.Run("RotateRefreshToken", func(b *testing.B) {
		s := benchStore(b, open)
		old := benchExchange(b, s, "code")[1].Hash
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
	})
	b.Run("UpdateGrant", func(b *testing.B) {
		s := benchStore(b, open)
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
	b.Run("AppendAudit", func(b *testing.B) {
		s := benchStore(b, open)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.AppendAudit(b.Context(), benchAuditRecord(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
	})
	b.Run("AppendAuditBatch64", func(b *testing.B) {
		const batch = 64
		ab, ok := benchStore(b, open).(store.AuditBatcher)
		if !ok {
			b.Skip("the backend does not batch audit records")
		}
		rs := make([]store.AuditRecord, batch)
		b.ReportAllocs()
		for b.Loop() {
			for i := range rs {
				rs[i] = benchAuditRecord(i)
			}
			if _, err := ab.AppendAuditBatch(b.Context(), rs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
	})
}

// benchStore opens a fresh store holding one client ("c") and one grant
// ("g").
func benchStore(b *testing.B, open func(b *testing.B) store.Store) store.Store {
	b.Helper()
	s := open(b)
	if err := s.CreateClient(b.Context(), store.Client{ID: "c"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateGrant(b.Context(), store.Grant{ID: "g", ClientID: "c", UserID: "u", Email: "u@example.com", Role: "0", Permissions: []string{"image_generation"}, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchExchange issues the tokens of code for grant "g" (access first,
// then refresh).
func benchExchange(b *testing.B, s store.Store, code string) []store.Token {
	b.Helper()
	h := store.HashSecret(code)
	if err := s.CreateAuthCode(b.Context(), store.AuthCode{CodeHash: h, GrantID: "g"}); err != nil {
		b.Fatal(err)
	}
	tokens := benchTokens(h)
	if _, err := s.ExchangeAuthCode(b.Context(), h, tokens, time.Time{}); err != nil {
		b.Fatal(err)
	}
	return tokens
}

// benchTokens are the access and refresh tokens an exchange of code issues.
func benchTokens(code string) []store.Token {
	exp := time.Now().Add(24 * time.Hour)
	return []store.Token{
		{Hash: store.HashSecret(code + "/access"), Kind: store.AccessToken, GrantID: "g", ClientID: "c", CreatedAt: time.Now(), ExpiresAt: exp},
		{Hash: store.HashSecret(code + "/refresh"), Kind: store.RefreshToken, GrantID: "g", ClientID: "c", CreatedAt: time.Now(), ExpiresAt: exp},
	}
}

func benchAuditRecord(i int) store.AuditRecord {
	return store.AuditRecord{
		Time: time.Now(), UserID: "user_01", OrganizationID: "org_01", ClientID: "c",
		Plugin: "imagegen", Tool: "generate_image", Decision: "allow", Outcome: "ok",
		Duration: time.Duration(i) * time.Microsecond, ExpiresAt: time.Now().Add(24 * time.Hour),
	}
}
