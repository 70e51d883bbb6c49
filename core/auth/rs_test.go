package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/toolgate/toolgate/core/auth/authkit"
)

// authkitDomain is a fake AuthKit domain: it serves a JWKS and signs
// RS256 tokens with the claims AuthKit uses.
type authkitDomain struct {
	t   testing.TB
	key *rsa.PrivateKey
	ts  *httptest.Server
}

func newAuthKitDomain(t testing.TB) *authkitDomain {
	d := &authkitDomain{t: t, key: signingKey(t)}
	d.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pub := d.key.PublicKey
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	}))
	t.Cleanup(d.ts.Close)
	return d
}

func (d *authkitDomain) sign(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, d.key, crypto.SHA256, sum[:])
	if err != nil {
		d.t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

type fakePerms struct {
	calls atomic.Int32
	err   error
}

func (f *fakePerms) Permissions(context.Context, string, string) (string, []string, error) {
	f.calls.Add(1)
	return "member", []string{"from_membership"}, f.err
}

// Checklist 54, 66: resource-server mode verifies AuthKit JWTs (signature,
// iss, aud = our MCP URL, exp) and publishes metadata naming AuthKit.
func TestResourceServerMode(t *testing.T) {
	d := newAuthKitDomain(t)
	issuer := "https://example.authkit.app"
	up, err := authkit.New(authkit.Config{ClientID: "client_x", APIKey: "sk_test", Issuer: issuer, JWKSURL: d.ts.URL + "/oauth2/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	perms := &fakePerms{}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	rs, err := NewResourceServer(ResourceServerConfig{PublicURL: base, AuthorizationServer: issuer, Permissions: perms}, up)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rs.Mount(mux)
	mux.Handle(PathMCP, rs.Protect(PathMCP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := CallerFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(c)
	})))
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()

	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), base+PathPRMetadata+PathMCP, base+PathMCP, nil)
	if err != nil || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != issuer || slices.Contains(prm.ScopesSupported, "offline_access") {
		t.Fatalf("metadata %+v, %v", prm, err)
	}
	resp, err := noRedirect.Get(base + PathASMetadata)
	if err != nil || resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != issuer+PathASMetadata {
		t.Errorf("AS metadata redirect: %v %v", resp, err)
	}

	now := time.Now()
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"iss": issuer, "sub": "user_1", "aud": base + PathMCP, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"sid": "session_1", "org_id": "org_1", "role": "admin", "permissions": []string{"image_generation"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	call := func(token string) (*http.Response, Caller) {
		req, _ := http.NewRequest("POST", base+PathMCP, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c Caller
		_ = json.NewDecoder(resp.Body).Decode(&c)
		return resp, c
	}
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"valid", d.sign(claims()), 200},
		{"aud list", d.sign(claims("aud", []string{"x", base + PathMCP})), 200},
		{"aud is a client id", d.sign(claims("aud", "client_abc")), 401},
		{"aud another resource", d.sign(claims("aud", "https://other.example/mcp")), 401},
		{"no aud", d.sign(claims("aud", nil)), 401},
		{"other issuer", d.sign(claims("iss", "https://evil.authkit.app")), 401},
		{"expired", d.sign(claims("exp", now.Add(-time.Hour).Unix())), 401},
		{"tampered", d.sign(claims())[:40] + "x" + d.sign(claims())[41:], 401},
		{"not a jwt", "opaque-token", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, c := call(tt.token)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("challenge %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.status == 200 && (c.UserID != "user_1" || c.Role != "admin" || !slices.Contains(c.Permissions, "image_generation") || c.GrantID != "session_1") {
				t.Errorf("caller %+v", c)
			}
		})
	}
	// No permissions claim: the membership lookup fills them in, once per
	// token thanks to the cache.
	tok := d.sign(claims("permissions", nil, "role", nil))
	for range 3 {
		_, c := call(tok)
		if c.Role != "member" || !slices.Equal(c.Permissions, []string{"from_membership"}) {
			t.Fatalf("caller %+v, want the membership's role and permissions", c)
		}
	}
	if n := perms.calls.Load(); n != 1 {
		t.Errorf("permission lookups = %d, want 1 (cached)", n)
	}
	perms.err = errors.New("workos down")
	if resp, _ := call(d.sign(claims("permissions", nil, "jti", "other"))); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("lookup failure: %d, want 503", resp.StatusCode)
	}
	// Not a member of the token's organization: signed in, but with no
	// role and no permissions, and that answer is cached too.
	perms.err = fmt.Errorf("membership: %w", authkit.ErrNoMembership)
	before := perms.calls.Load()
	nonMember := d.sign(claims("permissions", nil, "role", nil, "jti", "nonmember"))
	for range 2 {
		resp, c := call(nonMember)
		if resp.StatusCode != http.StatusOK || c.Role != "" || len(c.Permissions) != 0 {
			t.Fatalf("non-member: %d, caller %+v; want 200 with no role or permissions", resp.StatusCode, c)
		}
	}
	if n := perms.calls.Load() - before; n != 1 {
		t.Errorf("non-member lookups = %d, want 1 (cached)", n)
	}
}

func TestResourceServerConfig(t *testing.T) {
	v, _ := authkit.New(authkit.Config{ClientID: "c", APIKey: "k"})
	for _, tc := range []struct {
		cfg ResourceServerConfig
		ok  bool
	}{
		{ResourceServerConfig{PublicURL: "https://t.example", AuthorizationServer: "https://x.authkit.app"}, true},
		{ResourceServerConfig{PublicURL: "https://t.example", AuthorizationServer: "http://x.authkit.app"}, false},
		{ResourceServerConfig{PublicURL: "https://t.example", AuthorizationServer: ""}, false},
		{ResourceServerConfig{PublicURL: "https://t.example/x", AuthorizationServer: "https://x.authkit.app"}, false},
	} {
		if _, err := NewResourceServer(tc.cfg, v); (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// FuzzResourceServerToken: no token but the one the AuthKit domain signed
// is ever accepted, and nothing panics.
func FuzzResourceServerToken(f *testing.F) {
	d := newAuthKitDomain(f)
	issuer := "https://example.authkit.app"
	up, err := authkit.New(authkit.Config{ClientID: "client_x", APIKey: "sk_test", Issuer: issuer, JWKSURL: d.ts.URL + "/oauth2/jwks"})
	if err != nil {
		f.Fatal(err)
	}
	rs, err := NewResourceServer(ResourceServerConfig{PublicURL: "https://toolgate.example", AuthorizationServer: issuer, CacheSize: -1}, up)
	if err != nil {
		f.Fatal(err)
	}
	good := d.sign(map[string]any{"iss": issuer, "sub": "user_1", "aud": "https://toolgate.example/mcp", "exp": time.Now().Add(time.Hour).Unix()})
	f.Add(good)
	f.Add(good + "x")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := rs.verify(context.Background(), token, "https://toolgate.example/mcp")
		if err == nil && (token != good || c.UserID != "user_1") {
			t.Fatalf("accepted %q as %+v", token, c)
		}
		if err != nil && !errors.Is(err, errTokenInvalid) {
			t.Fatalf("error %v is not a token error", err)
		}
	})
}
