package auth

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// A grant is pending until its code is exchanged: created at /callback, it
// expires with its code, so a sign-in whose code is never exchanged leaves
// neither a grant nor the upstream session sealed in it behind once the
// code has expired. The exchange extends the grant to the refresh
// lifetime; a replayed code still revokes it.
func TestGrantPendingUntilCodeExchange(t *testing.T) {
	clock := time.Now().UTC().Truncate(time.Millisecond)
	e := newTestEnv(t, func(c *Config) { c.Now = func() time.Time { return clock } }, nil)
	ctx := t.Context()
	c := e.publicClient()
	grantOf := func(access string) store.Grant {
		t.Helper()
		rec, err := e.st.GetToken(ctx, store.HashSecret(access))
		if err != nil {
			t.Fatalf("stored access token: %v", err)
		}
		g, err := e.st.GetGrant(ctx, rec.GrantID)
		if err != nil {
			t.Fatalf("grant of an exchanged code: %v", err)
		}
		return g
	}

	// A sign-in whose code is never exchanged.
	_, ch := pkce()
	e.getCode(newBrowser(t, "alice@example.com"), c.ClientID, ch)
	pending, err := e.st.ListGrants(ctx, store.GrantFilter{ClientID: c.ClientID})
	if err != nil || len(pending) != 1 {
		t.Fatalf("grants after /callback: %v %v, want one", pending, err)
	}
	if want := clock.Add(DefaultCodeTTL); !pending[0].ExpiresAt.Equal(want) {
		t.Fatalf("pending grant expires at %s, want with its code at %s", pending[0].ExpiresAt, want)
	}

	// A sign-in whose code is exchanged: the grant now lives as long as
	// its refresh token.
	verifier, ch := pkce()
	code := e.getCode(newBrowser(t, "bob@example.com"), c.ClientID, ch)
	status, tk := e.exchange(c.ClientID, code, verifier)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %+v", status, tk)
	}
	exchanged := grantOf(tk.AccessToken)
	if want := clock.Add(DefaultRefreshTokenTTL); !exchanged.ExpiresAt.Equal(want) {
		t.Fatalf("exchanged grant expires at %s, want %s", exchanged.ExpiresAt, want)
	}
	status, tk = e.refreshWith(c.ClientID, tk.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %+v", status, tk)
	}
	if g := grantOf(tk.AccessToken); !g.ExpiresAt.Equal(exchanged.ExpiresAt) {
		t.Fatalf("grant expires at %s after a refresh, want %s", g.ExpiresAt, exchanged.ExpiresAt)
	}

	// A replayed code revokes its (extended) grant.
	verifier, ch = pkce()
	replayed := e.getCode(newBrowser(t, "alice@example.com"), c.ClientID, ch)
	if status, r := e.exchange(c.ClientID, replayed, verifier); status != http.StatusOK {
		t.Fatalf("exchange: %d %+v", status, r)
	}
	if status, r := e.exchange(c.ClientID, replayed, verifier); status != http.StatusBadRequest || r.Error != ErrCodeInvalidGrant {
		t.Fatalf("replayed code: %d %+v, want 400 invalid_grant", status, r)
	}

	// Once the codes have expired only the exchanged grant is left.
	if err := e.st.GarbageCollect(ctx, clock.Add(DefaultCodeTTL+time.Second)); err != nil {
		t.Fatalf("GarbageCollect: %v", err)
	}
	if _, err := e.st.GetGrant(ctx, pending[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grant of the unexchanged code after the code TTL: %v, want ErrNotFound", err)
	}
	left, err := e.st.ListGrants(ctx, store.GrantFilter{ClientID: c.ClientID})
	if err != nil || len(left) != 1 || left[0].ID != exchanged.ID {
		t.Fatalf("grants after the code TTL: %v %v, want only %s", left, err, exchanged.ID)
	}
}
