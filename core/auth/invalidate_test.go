package auth

import (
	"context"
	"net/http"
	"testing"

	"github.com/toolgate/toolgate/core/store"
)

// TestInvalidate: a revocation written to the store by someone else in
// this process (the admin handler) refuses the very next request once it
// is passed to Invalidate, without waiting for the store's change feed
// (which this store never delivers).
func TestInvalidate(t *testing.T) {
	ws := &watchStore{}
	wrapStore = func(s store.Store) store.Store { ws.Store = s; return ws }
	defer func() { wrapStore = nil }()
	e := newTestEnv(t, nil, nil)
	ctx := context.Background()

	_, revoked := e.signIn("alice@example.com")
	_, deleted := e.signIn("alice@example.com")
	_, bystander := e.signIn("bob@example.com")
	callers := map[string]Caller{}
	for _, tk := range []tokens{revoked, deleted, bystander} {
		status, c, _ := e.callMCP(tk.AccessToken) // cached from here on
		if status != http.StatusOK {
			t.Fatalf("fresh token: %d", status)
		}
		callers[tk.AccessToken] = c
	}

	if err := e.st.RevokeGrant(ctx, callers[revoked.AccessToken].GrantID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteClient(ctx, callers[deleted.AccessToken].ClientID); err != nil {
		t.Fatal(err)
	}
	// Without a change feed the cache still vouches for both: this is the
	// window Invalidate closes.
	if status, _, _ := e.callMCP(revoked.AccessToken); status != http.StatusOK {
		t.Fatalf("before Invalidate the cached token answered %d; the test no longer shows the window", status)
	}
	e.auth.Invalidate(store.Change{Kind: store.ChangeGrantRevoked, ID: callers[revoked.AccessToken].GrantID})
	e.auth.Invalidate(store.Change{Kind: store.ChangeClientDeleted, ID: callers[deleted.AccessToken].ClientID})
	e.auth.Invalidate(store.Change{Kind: store.ChangeUnknown}) // ignored: not a revocation
	for name, tk := range map[string]tokens{"revoked grant": revoked, "deleted client": deleted} {
		if status, _, _ := e.callMCP(tk.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("%s: next request = %d, want 401", name, status)
		}
	}
	if e.auth.cache.get(store.HashSecret(bystander.AccessToken), e.auth.cfg.Now()) == nil {
		t.Error("Invalidate dropped an unrelated cached token")
	}
}
