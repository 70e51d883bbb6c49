package auth

import (
	"context"
	"net/http"
	"testing"

	"github.com/toolgate/toolgate/core/store"
)

// While the store cannot announce changes (ChangeSuspended) every bearer
// check reads the store, so a revocation the cache never heard of is
// refused at once; ChangeUnknown flushes the cache and turns it back on.
func TestCacheSuspendedUntilUnknown(t *testing.T) {
	ws := &watchStore{}
	wrapStore = func(s store.Store) store.Store { ws.Store = s; return ws }
	defer func() { wrapStore = nil }()
	e := newTestEnv(t, nil, nil)
	if ws.fn == nil {
		t.Fatal("New did not watch a store.Watcher")
	}
	ctx := context.Background()
	call := func(what, token string, want int) Caller {
		t.Helper()
		st, c, _ := e.callMCP(token)
		if st != want {
			t.Fatalf("%s: status %d, want %d", what, st, want)
		}
		return c
	}
	// ws.Store is the real store underneath: changes made through it are
	// not announced to the server, as when a notification is lost.
	revokeUnannounced := func(grantID string) {
		t.Helper()
		if err := ws.Store.RevokeGrant(ctx, grantID); err != nil {
			t.Fatalf("RevokeGrant: %v", err)
		}
	}

	// Control: with caching on, an unannounced revocation is not seen
	// while the entry is cached. This is what suspension must prevent.
	_, stale := e.signIn("alice@example.com")
	c := call("first call", stale.AccessToken, http.StatusOK)
	revokeUnannounced(c.GrantID)
	call("cached token after an unannounced revocation", stale.AccessToken, http.StatusOK)

	_, a := e.signIn("alice@example.com")
	_, b := e.signIn("alice@example.com")
	ca := call("token a", a.AccessToken, http.StatusOK)
	call("token b", b.AccessToken, http.StatusOK)
	if n := e.auth.cache.len(); n == 0 {
		t.Fatal("nothing cached before the suspension")
	}

	ws.fn(store.Change{Kind: store.ChangeSuspended})
	if n := e.auth.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries after ChangeSuspended, want 0", n)
	}
	call("token a while suspended", a.AccessToken, http.StatusOK)
	call("token b while suspended", b.AccessToken, http.StatusOK)
	if n := e.auth.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries while suspended, want 0", n)
	}
	revokeUnannounced(ca.GrantID)
	call("token a revoked unannounced while suspended", a.AccessToken, http.StatusUnauthorized)
	call("token b while suspended", b.AccessToken, http.StatusOK)
	// A second suspension (the store reconnects and drops again) changes nothing.
	ws.fn(store.Change{Kind: store.ChangeSuspended})
	call("token b suspended twice", b.AccessToken, http.StatusOK)
	if n := e.auth.cache.len(); n != 0 {
		t.Fatalf("cache holds %d entries while suspended, want 0", n)
	}

	ws.fn(store.Change{Kind: store.ChangeUnknown})
	call("token b after resuming", b.AccessToken, http.StatusOK)
	if n := e.auth.cache.len(); n != 1 {
		t.Fatalf("cache holds %d entries after ChangeUnknown and one call, want 1", n)
	}
	call("stale token after resuming", stale.AccessToken, http.StatusUnauthorized)
}
