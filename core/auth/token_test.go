package auth

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func basicAuth(id, secret string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}}
}

// Checklist 43-48: every bad token request gets its exact error and status,
// never a 500, and the headers of RFC 6749 §5.
func TestTokenNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	pub := e.publicClient()
	conf := e.register(`{"redirect_uris":["` + testRedirect + `"],"grant_types":["authorization_code","refresh_token"]}`)
	post := e.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"client_secret_post"}`)
	noRefresh := e.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none"}`)
	b := newBrowser(t, "alice@example.com")
	liveClient, live := e.signIn("alice@example.com")

	// code returns a fresh code of pub and its verifier.
	code := func() (string, string) {
		v, ch := pkce()
		return e.getCode(b, pub.ClientID, ch), v
	}
	codeForm := func(kv ...string) func() (url.Values, http.Header) {
		return func() (url.Values, http.Header) {
			c, v := code()
			f := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "code_verifier": {v}, "client_id": {pub.ClientID}, "redirect_uri": {testRedirect}}
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == "<del>" {
					f.Del(kv[i])
				} else {
					f.Set(kv[i], kv[i+1])
				}
			}
			return f, nil
		}
	}
	fixed := func(f url.Values, h http.Header) func() (url.Values, http.Header) {
		return func() (url.Values, http.Header) { return f, h }
	}
	refresh := func(kv ...string) url.Values {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {live.RefreshToken}, "client_id": {liveClient.ClientID}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	tests := []struct {
		name   string
		req    func() (url.Values, http.Header)
		status int
		code   string
		basic  bool // WWW-Authenticate: Basic expected
	}{
		{"no client", fixed(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, nil), 401, ErrCodeInvalidClient, false},
		{"unknown client", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {"0123456789abcdef0123456789abcdef"}}, nil), 401, ErrCodeInvalidClient, false},
		{"public client sends secret", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ClientID}, "client_secret": {"s"}}, nil), 401, ErrCodeInvalidClient, false},
		{"public client uses basic", fixed(url.Values{"grant_type": {"authorization_code"}}, basicAuth(pub.ClientID, "")), 401, ErrCodeInvalidClient, true},
		{"basic client sends nothing", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {conf.ClientID}}, nil), 401, ErrCodeInvalidClient, false},
		{"basic wrong secret", fixed(url.Values{"grant_type": {"authorization_code"}}, basicAuth(conf.ClientID, "wrong")), 401, ErrCodeInvalidClient, true},
		{"basic client uses post", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {conf.ClientID}, "client_secret": {conf.ClientSecret}}, nil), 401, ErrCodeInvalidClient, false},
		{"post client uses basic", fixed(url.Values{"grant_type": {"authorization_code"}}, basicAuth(post.ClientID, post.ClientSecret)), 401, ErrCodeInvalidClient, true},
		{"post wrong secret", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {post.ClientID}, "client_secret": {"x"}}, nil), 401, ErrCodeInvalidClient, false},
		{"basic and post", fixed(url.Values{"grant_type": {"authorization_code"}, "client_secret": {conf.ClientSecret}}, basicAuth(conf.ClientID, conf.ClientSecret)), 400, ErrCodeInvalidRequest, false},
		{"basic id mismatch", fixed(url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ClientID}}, basicAuth(conf.ClientID, conf.ClientSecret)), 401, ErrCodeInvalidClient, true},
		{"bearer scheme", fixed(url.Values{"grant_type": {"authorization_code"}}, http.Header{"Authorization": {"Bearer x"}}), 401, ErrCodeInvalidClient, true},
		{"malformed basic", fixed(url.Values{"grant_type": {"authorization_code"}}, http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:x"))}}), 401, ErrCodeInvalidClient, true},
		{"no grant_type", fixed(url.Values{"client_id": {pub.ClientID}}, nil), 400, ErrCodeInvalidRequest, false},
		{"password grant", fixed(url.Values{"grant_type": {"password"}, "client_id": {pub.ClientID}}, nil), 400, ErrCodeUnsupportedGrantType, false},
		{"client_credentials", fixed(url.Values{"grant_type": {"client_credentials"}}, basicAuth(conf.ClientID, conf.ClientSecret)), 400, ErrCodeUnsupportedGrantType, false},
		{"refresh not registered", fixed(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {noRefresh.ClientID}}, nil), 400, ErrCodeUnauthorizedClient, false},
		{"no code", codeForm("code", "<del>"), 400, ErrCodeInvalidRequest, false},
		{"no verifier", codeForm("code_verifier", "<del>"), 400, ErrCodeInvalidRequest, false},
		{"short verifier", codeForm("code_verifier", strings.Repeat("a", 42)), 400, ErrCodeInvalidRequest, false},
		{"verifier bad chars", codeForm("code_verifier", strings.Repeat("a", 42)+"!"), 400, ErrCodeInvalidRequest, false},
		{"garbage code", codeForm("code", "garbage"), 400, ErrCodeInvalidGrant, false},
		{"forged code", codeForm("code", strings.Repeat("a", 32)+".x"), 400, ErrCodeInvalidGrant, false},
		{"wrong verifier", codeForm("code_verifier", strings.Repeat("b", 43)), 400, ErrCodeInvalidGrant, false},
		{"other resource", codeForm("resource", "https://other.example/mcp"), 400, ErrCodeInvalidTarget, false},
		{"narrower resource", codeForm("resource", e.base+"/sse"), 400, ErrCodeInvalidTarget, false},
		{"redirect mismatch", codeForm("redirect_uri", "http://127.0.0.1:5555/other"), 400, ErrCodeInvalidGrant, false},
		{"code of another client", func() (url.Values, http.Header) {
			c, v := code()
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "code_verifier": {v}, "client_id": {noRefresh.ClientID}}, nil
		}, 400, ErrCodeInvalidGrant, false},
		{"no refresh_token", fixed(url.Values{"grant_type": {"refresh_token"}, "client_id": {pub.ClientID}}, nil), 400, ErrCodeInvalidRequest, false},
		{"garbage refresh", fixed(refresh("refresh_token", "garbage"), nil), 400, ErrCodeInvalidGrant, false},
		{"access token as refresh", fixed(refresh("refresh_token", live.AccessToken), nil), 400, ErrCodeInvalidGrant, false},
		{"refresh widens scope", fixed(refresh("scope", "admin"), nil), 400, ErrCodeInvalidScope, false},
		{"refresh other resource", fixed(refresh("resource", "https://other.example/mcp"), nil), 400, ErrCodeInvalidTarget, false},
		{"refresh by another client", fixed(refresh("client_id", pub.ClientID), nil), 400, ErrCodeInvalidGrant, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, hdr := tt.req()
			resp, body := e.postForm(PathToken, form, hdr)
			var eb errorBody
			_ = json.Unmarshal(body, &eb)
			if resp.StatusCode != tt.status || eb.Error != tt.code {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, eb.Error, eb.Description, tt.status, tt.code)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", resp.Header)
			}
			if got := strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic "); got != tt.basic {
				t.Errorf("WWW-Authenticate %q, want Basic %v", resp.Header.Get("WWW-Authenticate"), tt.basic)
			}
		})
	}
	// The live grant survived every refusal aimed at it that was not a
	// replay (a wrong client cannot burn another client's grant).
	if st, _, _ := e.callMCP(live.AccessToken); st != http.StatusOK {
		t.Errorf("live token after the negative table: %d", st)
	}
}

// A wrong PKCE verifier burns the code: its grant is revoked, so the right
// verifier cannot be used afterwards either.
func TestWrongVerifierBurnsCode(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	v, ch := pkce()
	code := e.getCode(newBrowser(t, "alice@example.com"), c.ClientID, ch)
	if st, tk := e.exchange(c.ClientID, code, strings.Repeat("x", 43)); st != 400 || tk.Error != ErrCodeInvalidGrant {
		t.Fatalf("wrong verifier: %d %+v", st, tk)
	}
	if st, tk := e.exchange(c.ClientID, code, v); st != 400 || tk.Error != ErrCodeInvalidGrant {
		t.Errorf("right verifier after a wrong one: %d %+v, want invalid_grant", st, tk)
	}
}

func TestTokenTransportNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	pub := e.publicClient()
	tests := []struct {
		name, method, contentType, body string
		status                          int
		code                            string
	}{
		{"GET", "GET", "", "", 405, ErrCodeInvalidRequest},
		{"method that is a substring", "ST", "application/x-www-form-urlencoded", "", 405, ErrCodeInvalidRequest},
		{"json body", "POST", "application/json", `{"grant_type":"authorization_code"}`, 400, ErrCodeInvalidRequest},
		{"repeated param", "POST", "application/x-www-form-urlencoded", "grant_type=refresh_token&grant_type=refresh_token&client_id=" + pub.ClientID, 400, ErrCodeInvalidRequest},
		{"malformed form", "POST", "application/x-www-form-urlencoded", "grant_type=%zz", 400, ErrCodeInvalidRequest},
		{"too large", "POST", "application/x-www-form-urlencoded", "x=" + strings.Repeat("a", maxFormBytes), 413, ErrCodeInvalidRequest},
	}
	for _, path := range []string{PathToken, PathRevoke} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				resp, body := e.do(tt.method, path, tt.contentType, tt.body, nil)
				var eb errorBody
				_ = json.Unmarshal(body, &eb)
				if resp.StatusCode != tt.status || eb.Error != tt.code {
					t.Errorf("got %d %q, want %d %q", resp.StatusCode, eb.Error, tt.status, tt.code)
				}
			})
		}
	}
	resp, body := e.postForm(PathRevoke, url.Values{"client_id": {pub.ClientID}}, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), ErrCodeInvalidRequest) {
		t.Errorf("revoke without token: %d %s", resp.StatusCode, body)
	}
	resp, body = e.postForm(PathRevoke, url.Values{"token": {"x"}}, nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), ErrCodeInvalidClient) {
		t.Errorf("revoke without client: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.do("OPTIONS", PathToken, "", "", nil)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("token preflight: %d", resp.StatusCode)
	}
}

// Checklist 43 and 49: the success response's shape and headers.
func TestTokenSuccessShape(t *testing.T) {
	// Shorter than the development AuthKit's 5-minute tokens, which would
	// cap it (TestAccessTokenCappedByUpstream).
	e := newTestEnv(t, func(c *Config) { c.AccessTokenTTL = 4 * 60e9 }, nil)
	c := e.publicClient()
	v, ch := pkce()
	code := e.getCode(newBrowser(t, "alice@example.com"), c.ClientID, ch)
	resp, body := e.postForm(PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}, "client_id": {c.ClientID}}, nil)
	var tk tokens
	_ = json.Unmarshal(body, &tk)
	if resp.StatusCode != 200 || tk.TokenType != "Bearer" || tk.ExpiresIn != 240 || tk.Scope != DefaultScope || len(tk.AccessToken) != 43 || len(tk.RefreshToken) != 43 {
		t.Errorf("token response %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", resp.Header)
	}
}
