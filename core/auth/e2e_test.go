package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/toolgate/toolgate/core/auth/authkit"
)

// sdkFlow runs the go-sdk's own OAuth client (AuthorizationCodeHandler)
// against the test stack: discovery from a 401 on /mcp, registration with
// meta, authorization through b, and the code exchange. It returns the
// access token the handler obtained.
func sdkFlow(t testing.TB, e *testEnv, b *browser, meta *oauthex.ClientRegistrationMetadata) string {
	t.Helper()
	ctx := context.Background()
	h, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &sdkauth.DynamicClientRegistrationConfig{Metadata: meta},
		AuthorizationCodeFetcher: func(_ context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
			loc, status, err := b.walk(args.URL)
			if err != nil {
				return nil, err
			}
			if loc == nil {
				t.Fatalf("authorization ended on a page with status %d: %s", status, b.lastPage)
			}
			q := loc.Query()
			return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatalf("NewAuthorizationCodeHandler: %v", err)
	}
	req, _ := http.NewRequest("POST", e.base+PathMCP, strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated /mcp: status %d, want 401", resp.StatusCode)
	}
	if err := h.Authorize(ctx, req, resp); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	src, err := h.TokenSource(ctx)
	if err != nil || src == nil {
		t.Fatalf("TokenSource: %v", err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok.AccessToken
}

func TestEndToEndGoSDKClient(t *testing.T) {
	tests := []struct {
		name   string
		method string
	}{
		{"public client", "none"},
		{"confidential client basic", "client_secret_basic"},
		{"confidential client post", "client_secret_post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil, nil)
			b := newBrowser(t, "alice@example.com")
			access := sdkFlow(t, e, b, &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{testRedirect},
				TokenEndpointAuthMethod: tt.method,
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ClientName:              "SDK " + tt.name,
			})
			if b.consentPages != 1 {
				t.Errorf("consent pages seen = %d, want 1", b.consentPages)
			}
			status, c, _ := e.callMCP(access)
			if status != http.StatusOK {
				t.Fatalf("/mcp with token: status %d", status)
			}
			if c.Email != "alice@example.com" || c.Role != "admin" || !slices.Contains(c.Permissions, "image_generation") {
				t.Errorf("caller = %+v, want alice, admin, image_generation", c)
			}
			if c.UserID == "" || c.OrganizationID == "" || c.ClientID == "" || c.GrantID == "" {
				t.Errorf("caller misses ids: %+v", c)
			}
			if c.Resource != e.base+PathMCP {
				t.Errorf("token resource = %q, want %q", c.Resource, e.base+PathMCP)
			}
			// The same token is not for /sse (RFC 8707 audience).
			resp, _ := e.do("POST", PathSSE, "application/json", "{}", http.Header{"Authorization": {"Bearer " + access}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("/sse with an /mcp token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// A second authorization of the same client in the same browser skips the
// consent page; bob gets bob's identity.
func TestEndToEndRememberedConsentAndSecondUser(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	b := newBrowser(t, "bob@example.com")
	for i := range 2 {
		v, ch := pkce()
		code := e.getCode(b, c.ClientID, ch)
		status, tk := e.exchange(c.ClientID, code, v)
		if status != http.StatusOK {
			t.Fatalf("round %d: exchange %d %+v", i, status, tk)
		}
		_, caller, _ := e.callMCP(tk.AccessToken)
		if caller.Email != "bob@example.com" || caller.Role != "member" || len(caller.Permissions) != 0 {
			t.Errorf("round %d: caller %+v, want bob, member, no permissions", i, caller)
		}
	}
	if b.consentPages != 1 {
		t.Errorf("consent pages = %d, want 1 (approval remembered)", b.consentPages)
	}
	// Another client in the same browser asks again.
	c2 := e.publicClient()
	_, ch := pkce()
	e.getCode(b, c2.ClientID, ch)
	if b.consentPages != 2 {
		t.Errorf("consent pages = %d after a second client, want 2", b.consentPages)
	}
}

func TestEndToEndRefreshRotates(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c, first := e.signIn("alice@example.com")
	status, second := e.refreshWith(c.ClientID, first.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %+v", status, second)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", second)
	}
	if st, _, _ := e.callMCP(second.AccessToken); st != http.StatusOK {
		t.Errorf("new access token: %d, want 200", st)
	}
	// A permission change upstream shows after the next refresh.
	if err := e.dev.SetPermissions("alice@example.com", []string{"image_generation", "admin_tools"}); err != nil {
		t.Fatal(err)
	}
	status, third := e.refreshWith(c.ClientID, second.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("second refresh: %d %+v", status, third)
	}
	_, caller, _ := e.callMCP(third.AccessToken)
	if !slices.Contains(caller.Permissions, "admin_tools") {
		t.Errorf("permissions after refresh = %v, want admin_tools", caller.Permissions)
	}
	// The older access token of the same grant sees the new identity too.
	_, caller, _ = e.callMCP(second.AccessToken)
	if !slices.Contains(caller.Permissions, "admin_tools") {
		t.Errorf("permissions via an older access token = %v, want admin_tools", caller.Permissions)
	}
}

// Checklist 50: reuse of a rotated refresh token revokes the grant.
func TestRefreshTokenReuseRevokesGrant(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c, first := e.signIn("alice@example.com")
	_, second := e.refreshWith(c.ClientID, first.RefreshToken)
	if second.AccessToken == "" {
		t.Fatal("first refresh failed")
	}
	status, again := e.refreshWith(c.ClientID, first.RefreshToken)
	if status != http.StatusBadRequest || again.Error != ErrCodeInvalidGrant {
		t.Fatalf("reuse: %d %+v, want 400 invalid_grant", status, again)
	}
	if st, _, _ := e.callMCP(second.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token after reuse: %d, want 401", st)
	}
	if st, tk := e.refreshWith(c.ClientID, second.RefreshToken); st != http.StatusBadRequest || tk.Error != ErrCodeInvalidGrant {
		t.Errorf("newest refresh token after reuse: %d %+v, want invalid_grant", st, tk)
	}
}

// Checklist 46: a replayed code is refused and revokes every token issued
// from it.
func TestCodeReplayRevokesGrant(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	v, ch := pkce()
	code := e.getCode(newBrowser(t, "alice@example.com"), c.ClientID, ch)
	status, tk := e.exchange(c.ClientID, code, v)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d", status)
	}
	if st, _, _ := e.callMCP(tk.AccessToken); st != http.StatusOK {
		t.Fatalf("token before replay: %d", st)
	}
	status, again := e.exchange(c.ClientID, code, v)
	if status != http.StatusBadRequest || again.Error != ErrCodeInvalidGrant {
		t.Fatalf("replay: %d %+v, want 400 invalid_grant", status, again)
	}
	if st, _, _ := e.callMCP(tk.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token after replay: %d, want 401", st)
	}
	if st, r := e.refreshWith(c.ClientID, tk.RefreshToken); st != http.StatusBadRequest || r.Error != ErrCodeInvalidGrant {
		t.Errorf("refresh token after replay: %d %+v, want invalid_grant", st, r)
	}
}

// Checklist 51: an upstream session that ended ends our grant at the next
// refresh.
func TestUpstreamInvalidGrantEndsGrant(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c, tk := e.signIn("alice@example.com")
	_, caller, _ := e.callMCP(tk.AccessToken)
	g, err := e.st.GetGrant(context.Background(), caller.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.up.RevokeSession(context.Background(), g.UpstreamSessionID); err != nil {
		t.Fatal(err)
	}
	status, r := e.refreshWith(c.ClientID, tk.RefreshToken)
	if status != http.StatusBadRequest || r.Error != ErrCodeInvalidGrant {
		t.Fatalf("refresh after upstream revoke: %d %+v, want invalid_grant", status, r)
	}
	if st, _, _ := e.callMCP(tk.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token after the grant ended: %d, want 401", st)
	}
}

func TestEndToEndDenyConsent(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	b := newBrowser(t, "alice@example.com")
	b.consent = "deny"
	_, ch := pkce()
	loc, _, err := b.walk(e.authorizeURL(c.ClientID, ch, nil))
	if err != nil || loc == nil {
		t.Fatalf("walk: %v", err)
	}
	q := loc.Query()
	if q.Get("error") != ErrCodeAccessDenied || q.Get("state") != "client-state-123" || q.Get("iss") != e.base || q.Has("code") {
		t.Errorf("deny redirect query = %v", q)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c, tk := e.signIn("alice@example.com")
	// Revoking the access token kills it but not the refresh token.
	resp, _ := e.postForm(PathRevoke, url.Values{"token": {tk.AccessToken}, "client_id": {c.ClientID}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke access: %d", resp.StatusCode)
	}
	if st, _, _ := e.callMCP(tk.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("revoked access token: %d, want 401", st)
	}
	st, next := e.refreshWith(c.ClientID, tk.RefreshToken)
	if st != http.StatusOK {
		t.Fatalf("refresh after access revoke: %d %+v", st, next)
	}
	// Another client's revocation has no effect.
	other := e.publicClient()
	resp, _ = e.postForm(PathRevoke, url.Values{"token": {next.RefreshToken}, "client_id": {other.ClientID}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke by another client: %d", resp.StatusCode)
	}
	if st, _, _ := e.callMCP(next.AccessToken); st != http.StatusOK {
		t.Errorf("token after another client's revoke: %d, want 200", st)
	}
	// Revoking the refresh token ends the grant.
	resp, _ = e.postForm(PathRevoke, url.Values{"token": {next.RefreshToken}, "client_id": {c.ClientID}, "token_type_hint": {"refresh_token"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke refresh: %d", resp.StatusCode)
	}
	if st, _, _ := e.callMCP(next.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("access token after refresh revoke: %d, want 401", st)
	}
	if st, r := e.refreshWith(c.ClientID, next.RefreshToken); st != http.StatusBadRequest || r.Error != ErrCodeInvalidGrant {
		t.Errorf("revoked refresh token: %d %+v", st, r)
	}
	// Garbage gets 200.
	resp, _ = e.postForm(PathRevoke, url.Values{"token": {"garbage"}, "client_id": {c.ClientID}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("revoke garbage: %d, want 200", resp.StatusCode)
	}
}

// Concurrent refreshes with one refresh token: exactly one wins; the others
// are reuse, which ends the grant (OAuth 2.1 §4.3.1), and the upstream is
// refreshed only once.
func TestConcurrentRefreshHammer(t *testing.T) {
	var upstreamRefreshes atomic.Int32
	e := newTestEnv(t, nil, func(up Upstream) Upstream { return &countingUpstream{Upstream: up, refreshes: &upstreamRefreshes} })
	c, tk := e.signIn("alice@example.com")
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}, "client_id": {c.ClientID}}
			resp, err := http.PostForm(e.base+PathToken, form)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	ok := 0
	for _, st := range statuses {
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d", st)
		}
	}
	if ok != 1 {
		t.Errorf("%d refreshes succeeded, want exactly 1 (statuses %v)", ok, statuses)
	}
	if got := upstreamRefreshes.Load(); got != 1 {
		t.Errorf("upstream refreshed %d times, want 1", got)
	}
}

type countingUpstream struct {
	Upstream
	refreshes *atomic.Int32
}

func (c *countingUpstream) Refresh(ctx context.Context, rt, org string) (authkit.Identity, error) {
	c.refreshes.Add(1)
	return c.Upstream.Refresh(ctx, rt, org)
}

// failingUpstream makes Refresh fail with err after (optionally) letting
// the real upstream rotate the token.
type failingUpstream struct {
	Upstream
	err     error
	rotate  bool
	rotated string
}

func (f *failingUpstream) Refresh(ctx context.Context, rt, org string) (authkit.Identity, error) {
	if f.err == nil {
		return f.Upstream.Refresh(ctx, rt, org)
	}
	if f.rotate {
		id, err := f.Upstream.Refresh(ctx, rt, org)
		if err != nil {
			return id, err
		}
		f.rotated = id.RefreshToken
		return authkit.Identity{RefreshToken: id.RefreshToken}, f.err
	}
	return authkit.Identity{}, f.err
}

// Checklist 51: how each kind of upstream refresh failure treats the grant.
func TestUpstreamRefreshFailures(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		rotate   bool
		status   int
		code     string
		survives bool
	}{
		{"unavailable after rotating", fmt.Errorf("x: %w", authkit.ErrUpstreamUnavailable), true, 503, ErrCodeTemporarilyUnavailable, true},
		{"our credentials refused", &authkit.UpstreamError{Op: "authenticate", StatusCode: 401}, false, 503, ErrCodeTemporarilyUnavailable, true},
		{"identity not verifiable", fmt.Errorf("verify: %w", authkit.ErrInvalidToken), true, 400, ErrCodeInvalidGrant, false},
		{"session ended", fmt.Errorf("x: %w", authkit.ErrUpstreamGrantInvalid), false, 400, ErrCodeInvalidGrant, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fu := &failingUpstream{}
			e := newTestEnv(t, nil, func(up Upstream) Upstream { fu.Upstream = up; return fu })
			c, tk := e.signIn("alice@example.com")
			fu.err, fu.rotate = tt.err, tt.rotate
			st, r := e.refreshWith(c.ClientID, tk.RefreshToken)
			if st != tt.status || r.Error != tt.code {
				t.Fatalf("refresh: %d %+v, want %d %s", st, r, tt.status, tt.code)
			}
			alive, _, _ := e.callMCP(tk.AccessToken)
			if (alive == http.StatusOK) != tt.survives {
				t.Fatalf("access token status %d, grant should survive: %v", alive, tt.survives)
			}
			if !tt.survives {
				return
			}
			// The client retries once the upstream is back: it works, with
			// the rotated upstream token if one was issued.
			fu.err = nil
			if st, r := e.refreshWith(c.ClientID, tk.RefreshToken); st != http.StatusOK {
				t.Errorf("retry after recovery: %d %+v", st, r)
			}
		})
	}
}

// Checklist 8, 38: a token for the whole server (the root metadata's
// resource) works on both endpoints; one for /sse only on /sse.
func TestTokenResourceBinding(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	b := newBrowser(t, "alice@example.com")
	for _, tc := range []struct {
		resource     string
		mcpOK, sseOK bool
	}{
		{e.base, true, true},
		{e.base + PathSSE, false, true},
		{strings.ToUpper(e.base[:4]) + e.base[4:] + "/mcp/", true, false},
	} {
		v, ch := pkce()
		loc, _, err := b.walk(e.authorizeURL(c.ClientID, ch, url.Values{"resource": {tc.resource}}))
		if err != nil || loc == nil {
			t.Fatalf("%s: walk: %v", tc.resource, err)
		}
		st, tk := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {v}, "client_id": {c.ClientID}, "resource": {tc.resource}}, nil)
		if st != http.StatusOK {
			t.Fatalf("%s: exchange %d %+v", tc.resource, st, tk)
		}
		for path, want := range map[string]bool{PathMCP: tc.mcpOK, PathSSE: tc.sseOK} {
			resp, _ := e.do("POST", path, "application/json", "{}", http.Header{"Authorization": {"Bearer " + tk.AccessToken}})
			if (resp.StatusCode == http.StatusOK) != want {
				t.Errorf("token for %s at %s: %d, want ok %v", tc.resource, path, resp.StatusCode, want)
			}
		}
	}
}
