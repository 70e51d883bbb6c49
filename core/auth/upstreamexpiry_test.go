package auth

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// TestAccessTokenCappedByUpstream: an access token never outlives the
// AuthKit access token that vouched for its grant (the development
// AuthKit's live 5 minutes), however long AccessTokenTTL is, both after the
// code exchange and after a refresh; expires_in states the capped
// lifetime; and the bearer check refuses the token once that instant has
// passed. A configured lifetime shorter than AuthKit's is kept as is
// (TestTokenSuccessShape).
func TestAccessTokenCappedByUpstream(t *testing.T) {
	var offset atomic.Int64 // how far our clock runs ahead of the real one
	e := newTestEnv(t, func(c *Config) {
		c.AccessTokenTTL = time.Hour
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	}, nil)
	ctx := context.Background()

	check := func(step string, tk tokens) store.Token {
		t.Helper()
		rec, err := e.st.GetToken(ctx, store.HashSecret(tk.AccessToken))
		if err != nil {
			t.Fatalf("%s: stored access token: %v", step, err)
		}
		g, err := e.st.GetGrant(ctx, rec.GrantID)
		if err != nil {
			t.Fatalf("%s: grant: %v", step, err)
		}
		if left := time.Until(g.UpstreamExpiresAt); left < 4*time.Minute || left > 5*time.Minute {
			t.Fatalf("%s: grant's upstream expiry is %s away, want AuthKit's 5-minute token lifetime", step, left)
		}
		if rec.ExpiresAt.After(g.UpstreamExpiresAt) || g.UpstreamExpiresAt.Sub(rec.ExpiresAt) >= time.Second {
			t.Errorf("%s: access token expires at %s, want within the second before the upstream expiry %s", step, rec.ExpiresAt, g.UpstreamExpiresAt)
		}
		if lifetime := rec.ExpiresAt.Sub(rec.CreatedAt); tk.ExpiresIn != int64(lifetime/time.Second) || lifetime%time.Second != 0 {
			t.Errorf("%s: expires_in %d, stored lifetime %s; want the same whole seconds", step, tk.ExpiresIn, lifetime)
		}
		return rec
	}

	c, tk := e.signIn("alice@example.com")
	check("code exchange", tk)
	status, tk2 := e.refreshWith(c.ClientID, tk.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %+v", status, tk2)
	}
	rec := check("refresh", tk2)

	if st, _, _ := e.callMCP(tk2.AccessToken); st != http.StatusOK {
		t.Fatalf("fresh token: %d", st)
	}
	// Past the capped expiry, well before AccessTokenTTL: refused, even
	// though the token is cached.
	offset.Store(int64(time.Until(rec.ExpiresAt) + time.Millisecond))
	st, _, resp := e.callMCP(tk2.AccessToken)
	if st != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("token past the upstream expiry: %d %q, want 401 invalid_token", st, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestAccessLifetime: the configured lifetime unless the upstream token
// ends sooner; whole seconds; never less than one second.
func TestAccessLifetime(t *testing.T) {
	s := &Server{cfg: Config{AccessTokenTTL: time.Hour}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 600e6, time.UTC)
	tests := []struct {
		name     string
		upstream time.Time
		want     time.Duration
	}{
		{"unknown upstream expiry", time.Time{}, time.Hour},
		{"upstream outlives the ttl", now.Add(2 * time.Hour), time.Hour},
		{"upstream ends first", now.Add(5*time.Minute - 400*time.Millisecond), 4*time.Minute + 59*time.Second},
		{"upstream already expired", now.Add(-time.Minute), time.Second},
	}
	for _, tt := range tests {
		if got := s.accessLifetime(now, tt.upstream); got != tt.want {
			t.Errorf("%s: accessLifetime = %s, want %s", tt.name, got, tt.want)
		}
	}
}
