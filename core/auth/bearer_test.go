package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/toolgate/toolgate/core/store"
)

// Checklist 7, 9, 53, 55: the exact challenge grammar for each failure,
// parsed with the go-sdk's own parser.
func TestBearerChallenges(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	_, tk := e.signIn("alice@example.com")
	meta := e.base + "/.well-known/oauth-protected-resource/mcp"
	tests := []struct {
		name      string
		method    string
		path      string
		header    []string
		status    int
		wantError string // the error auth-param; "" means none
	}{
		{"no token POST", "POST", "/mcp", nil, 401, ""},
		{"no token GET", "GET", "/mcp", nil, 401, ""},
		{"no token DELETE", "DELETE", "/mcp", nil, 401, ""},
		{"query token ignored", "POST", "/mcp?access_token=" + tk.AccessToken, nil, 401, ""},
		{"basic scheme", "POST", "/mcp", []string{"Basic dXNlcjpwYXNz"}, 401, ""},
		{"unknown token", "POST", "/mcp", []string{"Bearer " + store.NewSecret()}, 401, "invalid_token"},
		{"oversized token", "POST", "/mcp", []string{"Bearer " + strings.Repeat("a", 300)}, 401, "invalid_token"},
		{"lowercase bearer ok", "POST", "/mcp", []string{"bearer " + tk.AccessToken}, 200, ""},
		{"empty bearer", "POST", "/mcp", []string{"Bearer "}, 400, "invalid_request"},
		{"two tokens", "POST", "/mcp", []string{"Bearer a b"}, 400, "invalid_request"},
		{"two headers", "POST", "/mcp", []string{"Bearer " + tk.AccessToken, "Bearer x"}, 400, "invalid_request"},
		{"refresh token as access", "POST", "/mcp", []string{"Bearer " + tk.RefreshToken}, 401, "invalid_token"},
		{"token for mcp at sse", "POST", "/sse", []string{"Bearer " + tk.AccessToken}, 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(tt.method, tt.path, "application/json", "{}", http.Header{"Authorization": tt.header})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				return
			}
			cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
			if err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" {
				t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
			}
			p := cs[0].Params
			wantMeta := meta
			if strings.HasPrefix(tt.path, "/sse") {
				wantMeta = e.base + "/.well-known/oauth-protected-resource/sse"
			}
			if p["resource_metadata"] != wantMeta || p["scope"] != DefaultScope || p["error"] != tt.wantError {
				t.Errorf("challenge params %v, want resource_metadata %q, scope %q, error %q", p, wantMeta, DefaultScope, tt.wantError)
			}
		})
	}
}

// Expired tokens are refused even while cached.
func TestBearerExpiredToken(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newTestEnv(t, func(c *Config) { c.Now = func() time.Time { return clock() } }, nil)
	_, tk := e.signIn("alice@example.com")
	if st, _, _ := e.callMCP(tk.AccessToken); st != http.StatusOK {
		t.Fatalf("fresh token: %d", st)
	}
	if e.auth.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", e.auth.cache.len())
	}
	clock = func() time.Time { return now.Add(DefaultAccessTokenTTL + time.Second) }
	st, _, resp := e.callMCP(tk.AccessToken)
	if st != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %q, want 401 invalid_token", st, resp.Header.Get("WWW-Authenticate"))
	}
}

// The go-sdk TokenInfo carries the same identity as the Caller.
func TestProtectSetsSDKTokenInfo(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	_, tk := e.signIn("alice@example.com")
	var got *sdkauth.TokenInfo
	var caller Caller
	h := e.auth.Protect(PathMCP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = sdkauth.TokenInfoFromContext(r.Context())
		caller, _ = CallerFromContext(r.Context())
	}))
	req := httptest.NewRequest("POST", e.base+PathMCP, nil)
	req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got == nil {
		t.Fatal("no go-sdk TokenInfo in the context")
	}
	if got.UserID != caller.UserID || got.UserID == "" || got.Extra[ExtraEmail] != "alice@example.com" ||
		got.Extra[ExtraGrantID] != caller.GrantID || got.Expiration.IsZero() {
		t.Errorf("TokenInfo %+v does not match caller %+v", got, caller)
	}
}

// watchStore records the callback New registers through store.Watcher.
type watchStore struct {
	store.Store
	fn func(store.Change)
}

func (w *watchStore) Watch(_ context.Context, fn func(store.Change)) { w.fn = fn }

// Changes announced by the store (another process, the operator CLI) drop
// cached tokens.
func TestCacheInvalidatedByStoreWatcher(t *testing.T) {
	for _, kind := range []store.ChangeKind{store.ChangeGrantRevoked, store.ChangeGrantUpdated, store.ChangeTokenDeleted, store.ChangeClientDeleted, store.ChangeUnknown} {
		t.Run(string(kind), func(t *testing.T) {
			ws := &watchStore{}
			wrapStore = func(s store.Store) store.Store { ws.Store = s; return ws }
			defer func() { wrapStore = nil }()
			e := newTestEnv(t, nil, nil)
			if ws.fn == nil {
				t.Fatal("New did not watch a store.Watcher")
			}
			_, tk := e.signIn("alice@example.com")
			_, other := e.signIn("alice@example.com")
			_, caller, _ := e.callMCP(tk.AccessToken)
			e.callMCP(other.AccessToken)
			if n := e.auth.cache.len(); n != 2 {
				t.Fatalf("cache holds %d entries, want 2", n)
			}
			id := map[store.ChangeKind]string{
				store.ChangeGrantRevoked: caller.GrantID, store.ChangeGrantUpdated: caller.GrantID,
				store.ChangeTokenDeleted: store.HashSecret(tk.AccessToken), store.ChangeClientDeleted: caller.ClientID,
			}[kind]
			ws.fn(store.Change{Kind: kind, ID: id})
			want := 1
			if kind == store.ChangeUnknown {
				want = 0
			}
			if n := e.auth.cache.len(); n != want {
				t.Errorf("after %s: cache holds %d entries, want %d", kind, n, want)
			}
			if e.auth.cache.get(store.HashSecret(tk.AccessToken), time.Now()) != nil {
				t.Errorf("after %s: the changed token is still cached", kind)
			}
		})
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(10)
	until := time.Now().Add(time.Hour)
	for i := range 100 {
		c.put(store.HashSecret(string(rune(i))), &Caller{GrantID: "g"}, until, c.generation())
	}
	if n := c.len(); n > 10 {
		t.Errorf("cache holds %d entries, want at most 10", n)
	}
	gen := c.generation()
	c.dropGrant("g")
	c.put("late", &Caller{GrantID: "g"}, until, gen) // raced with the drop
	if c.get("late", time.Now()) != nil {
		t.Error("an entry loaded before an invalidation was cached after it")
	}
}

// BenchmarkVerifyBearerCached measures the hot path of every /mcp request:
// hash, cache lookup, resource check.
func BenchmarkVerifyBearerCached(b *testing.B) {
	e := newTestEnv(b, nil, nil)
	_, tk := e.signIn("alice@example.com")
	ctx := context.Background()
	resource := e.auth.MCPResource()
	if _, err := e.auth.verifyBearer(ctx, tk.AccessToken, resource); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.auth.verifyBearer(ctx, tk.AccessToken, resource); err != nil {
			b.Fatal(err)
		}
	}
}
