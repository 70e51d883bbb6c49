package auth

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

var pageErrorCode = regexp.MustCompile(`<code id="error">([a-z_]+)</code>`)

// Checklist 33-40: each bad authorization request gets its exact error,
// shown as a page when the client or redirect URI cannot be trusted and
// redirected (with state and iss) otherwise.
func TestAuthorizeNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	two := e.register(`{"redirect_uris":["https://a.example/cb","https://b.example/cb"],"token_endpoint_auth_method":"none"}`)
	_, ch := pkce()
	base := e.authorizeURL(c.ClientID, ch, nil)
	set := func(kv ...string) string {
		u, _ := url.Parse(base)
		q := u.Query()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<del>" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name     string
		url      string
		redirect bool // error redirected to the client (else a page)
		code     string
		state    bool // the client's state comes back
	}{
		{"no client_id", set("client_id", "<del>"), false, ErrCodeInvalidRequest, false},
		{"unknown client", set("client_id", "0123456789abcdef0123456789abcdef"), false, ErrCodeInvalidClient, false},
		{"garbage client", set("client_id", "../../x"), false, ErrCodeInvalidClient, false},
		{"repeated client_id", base + "&client_id=" + c.ClientID, false, ErrCodeInvalidRequest, false},
		{"repeated redirect_uri", base + "&redirect_uri=" + url.QueryEscape(testRedirect), false, ErrCodeInvalidRequest, false},
		{"unregistered redirect", set("redirect_uri", "https://evil.example/cb"), false, ErrCodeInvalidRequest, false},
		{"other path", set("redirect_uri", "http://127.0.0.1:5555/cb2"), false, ErrCodeInvalidRequest, false},
		{"extra query", set("redirect_uri", "http://127.0.0.1:5555/cb?x=1"), false, ErrCodeInvalidRequest, false},
		{"localhost for 127.0.0.1", set("redirect_uri", "http://localhost:5555/cb"), false, ErrCodeInvalidRequest, false},
		{"omitted with two registered", e.authorizeURL(two.ClientID, ch, url.Values{"redirect_uri": nil}), false, ErrCodeInvalidRequest, false},
		{"malformed query", e.base + PathAuthorize + "?client_id=%zz", false, ErrCodeInvalidRequest, false},
		{"no response_type", set("response_type", "<del>"), true, ErrCodeInvalidRequest, true},
		{"token response_type", set("response_type", "token"), true, ErrCodeUnsupportedResponseType, true},
		{"no code_challenge", set("code_challenge", "<del>"), true, ErrCodeInvalidRequest, true},
		{"no challenge method", set("code_challenge_method", "<del>"), true, ErrCodeInvalidRequest, true},
		{"plain", set("code_challenge_method", "plain"), true, ErrCodeInvalidRequest, true},
		{"short challenge", set("code_challenge", ch[:42]), true, ErrCodeInvalidRequest, true},
		{"other resource", set("resource", "https://other.example/mcp"), true, ErrCodeInvalidTarget, true},
		{"relative resource", set("resource", "/mcp"), true, ErrCodeInvalidTarget, true},
		{"resource with fragment", set("resource", e.base+"/mcp#x"), true, ErrCodeInvalidTarget, true},
		{"unknown scope", set("scope", "admin"), true, ErrCodeInvalidScope, true},
		{"repeated scope", base + "&scope=mcp%3Atools&scope=mcp%3Atools", true, ErrCodeInvalidRequest, false},
		{"repeated state", base + "&state=x", true, ErrCodeInvalidRequest, false},
		{"long state", set("state", strings.Repeat("s", maxStateLen+1)), true, ErrCodeInvalidRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do("GET", strings.TrimPrefix(tt.url, e.base), "", "", nil)
			if !tt.redirect {
				m := pageErrorCode.FindSubmatch(body)
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || m == nil || string(m[1]) != tt.code {
					t.Fatalf("got %d Location %q page code %q, want a 400 page with %s", resp.StatusCode, resp.Header.Get("Location"), m, tt.code)
				}
				if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
					t.Error("error page can be framed")
				}
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
				t.Fatalf("got %d Location %q, want a redirect to the client", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := loc.Query()
			if q.Get("error") != tt.code || q.Get("iss") != e.base || q.Has("code") {
				t.Errorf("redirect query %v, want error %s and iss", q, tt.code)
			}
			if got := q.Get("state") == "client-state-123"; got != tt.state {
				t.Errorf("state echoed = %v, want %v", got, tt.state)
			}
		})
	}
}

func TestAuthorizeAccepts(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	_, ch := pkce()
	for name, extra := range map[string]url.Values{
		"loopback other port":  {"redirect_uri": {"http://127.0.0.1:7777/cb"}},
		"redirect omitted":     {"redirect_uri": nil},
		"resource omitted":     {"resource": nil},
		"resource cased":       {"resource": {strings.ToUpper(e.base[:7]) + e.base[7:] + "/mcp/"}},
		"root resource":        {"resource": {e.base}},
		"sse resource":         {"resource": {e.base + "/sse"}},
		"explicit scope":       {"scope": {DefaultScope}},
		"unknown param":        {"prompt": {"consent"}, "nonce": {"x"}},
		"no state":             {"state": nil},
		"state with specials":  {"state": {`a b&c=d"<>`}},
		"offline scope absent": {"scope": {DefaultScope + " " + DefaultScope}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.do("GET", strings.TrimPrefix(e.authorizeURL(c.ClientID, ch, extra), e.base), "", "", nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="csrf_token"`) {
				t.Errorf("status %d, want the consent page; body %s", resp.StatusCode, body)
			}
		})
	}
}

// Checklist 31 and 41: the consent page names the client and the redirect
// host, warns when every redirect URI is loopback, cannot be framed, and
// its form only works with this browser's CSRF token.
func TestConsentPage(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	loop := e.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","client_name":"Loop <Client>"}`)
	web := e.register(`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none","client_name":"Web Client"}`)
	_, ch := pkce()
	resp, body := e.do("GET", strings.TrimPrefix(e.authorizeURL(loop.ClientID, ch, nil), e.base), "", "", nil)
	page := string(body)
	if !strings.Contains(page, "Loop &lt;Client&gt;") || !strings.Contains(page, `id="redirect-host">127.0.0.1:5555<`) || !strings.Contains(page, `id="loopback-warning"`) {
		t.Errorf("loopback consent page misses name, host or warning:\n%s", page)
	}
	for _, h := range []string{"Approve", "Deny"} {
		if !strings.Contains(page, ">"+h+"</button>") {
			t.Errorf("no %s button", h)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("consent page can be framed: %v", resp.Header)
	}
	_, body = e.do("GET", strings.TrimPrefix(e.authorizeURL(web.ClientID, ch, url.Values{"redirect_uri": {"https://app.example/cb"}}), e.base), "", "", nil)
	if strings.Contains(string(body), `id="loopback-warning"`) || !strings.Contains(string(body), `id="redirect-host">app.example<`) {
		t.Errorf("https client page: %s", body)
	}
}

func TestConsentFormNegative(t *testing.T) {
	now := time.Now()
	clock := now
	e := newTestEnv(t, func(c *Config) { c.Now = func() time.Time { return clock } }, nil)
	c := e.publicClient()
	_, ch := pkce()
	b := newBrowser(t, "alice@example.com")
	resp, err := b.client.Get(e.authorizeURL(c.ClientID, ch, nil))
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	_, _ = copyBody(&page, resp)
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page.String(), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	browserCookie := ""
	for _, ck := range b.jar.Cookies(resp.Request.URL) {
		if ck.Name == cookieBrowser {
			browserCookie = ck.Value
		}
	}
	if browserCookie == "" || form.Get("csrf_token") == "" {
		t.Fatal("no browser cookie or CSRF token")
	}
	with := func(kv ...string) url.Values {
		f := url.Values{"request": {form.Get("request")}, "csrf_token": {form.Get("csrf_token")}, "action": {"approve"}}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	cookie := http.Header{"Cookie": {cookieBrowser + "=" + browserCookie}}
	other := http.Header{"Cookie": {cookieBrowser + "=" + strings.Repeat("A", 43)}}
	tests := []struct {
		name   string
		form   url.Values
		hdr    http.Header
		status int
		code   string
		after  time.Duration
	}{
		{"no csrf token", with("csrf_token", ""), cookie, 403, ErrCodeAccessDenied, 0},
		{"no browser cookie", with(), nil, 403, ErrCodeAccessDenied, 0},
		{"another browser", with(), other, 403, ErrCodeAccessDenied, 0},
		{"tampered request", with("request", form.Get("request")+"x"), cookie, 403, ErrCodeAccessDenied, 0},
		{"bad action", with("action", "maybe"), cookie, 400, ErrCodeInvalidRequest, 0},
		{"expired page", with(), cookie, 400, ErrCodeInvalidRequest, DefaultPendingTTL + time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock = now.Add(tt.after)
			resp, body := e.postForm(PathAuthorize, tt.form, tt.hdr)
			m := pageErrorCode.FindSubmatch(body)
			if resp.StatusCode != tt.status || m == nil || string(m[1]) != tt.code || resp.Header.Get("Location") != "" {
				t.Errorf("got %d %q, want %d %s", resp.StatusCode, m, tt.status, tt.code)
			}
		})
	}
	// A client deleted after the page was shown cannot be approved.
	clock = now
	if err := e.st.DeleteClient(context.Background(), c.ClientID); err != nil {
		t.Fatal(err)
	}
	resp2, body := e.postForm(PathAuthorize, with(), cookie)
	if m := pageErrorCode.FindSubmatch(body); resp2.StatusCode != 400 || m == nil || string(m[1]) != ErrCodeInvalidClient {
		t.Errorf("deleted client: %d %s", resp2.StatusCode, body)
	}
}

// Checklist 41: over https the cookies carry the __Host- prefix, Secure,
// HttpOnly and SameSite=Lax.
func TestHostCookiesOverHTTPS(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.PublicURL = "https://toolgate.example" }, nil)
	c := e.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none"}`)
	_, ch := pkce()
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
	rec := httptest.NewRecorder()
	e.auth.handleAuthorize(rec, httptest.NewRequest("GET", "https://toolgate.example/authorize?"+q.Encode(), nil))
	if rec.Code != 200 {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Body)
	}
	sc := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"__Host-toolgate_browser=", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", sc)
	}
}

// Checklist 42: the upstream state is single-use and bound to the browser
// that approved; a callback from another browser or a replay issues no
// code.
func TestCallbackNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	c := e.publicClient()
	start := func() (*browser, string) {
		b := newBrowser(t, "alice@example.com")
		b.stopAt = e.base + PathCallback
		_, ch := pkce()
		loc, status, err := b.walk(e.authorizeURL(c.ClientID, ch, nil))
		if err != nil || loc == nil {
			t.Fatalf("walk to callback: %d %v", status, err)
		}
		return b, loc.String()
	}
	expect := func(t *testing.T, b *browser, target string, status int) {
		t.Helper()
		b.stopAt = testRedirect
		loc, got, err := b.walk(target)
		if err != nil || loc != nil || got != status {
			t.Errorf("callback: loc %v status %d err %v, want a %d page", loc, got, err, status)
		}
	}
	t.Run("replayed", func(t *testing.T) {
		b, cb := start()
		b.stopAt = testRedirect
		if loc, _, err := b.walk(cb); err != nil || loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("first callback: %v %v", loc, err)
		}
		expect(t, b, cb, 400)
	})
	t.Run("other browser", func(t *testing.T) {
		b, cb := start()
		expect(t, newBrowser(t, "bob@example.com"), cb, 400)
		expect(t, b, cb, 400) // the attempt consumed it
	})
	t.Run("no state", func(t *testing.T) {
		_, cb := start()
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Del("state")
		resp, _ := e.do("GET", PathCallback+"?"+q.Encode(), "", "", nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("no state: %d", resp.StatusCode)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		resp, _ := e.do("GET", PathCallback+"?state=abc&code=def", "", "", nil)
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("unknown state: %d", resp.StatusCode)
		}
	})
	t.Run("upstream error", func(t *testing.T) {
		b, cb := start()
		u, _ := url.Parse(cb)
		q := url.Values{"state": {u.Query().Get("state")}, "error": {"access_denied"}}
		b.stopAt = testRedirect
		loc, _, err := b.walk(e.base + PathCallback + "?" + q.Encode())
		if err != nil || loc == nil || loc.Query().Get("error") != ErrCodeAccessDenied || loc.Query().Has("code") {
			t.Errorf("upstream error: %v %v", loc, err)
		}
	})
	t.Run("bad upstream code", func(t *testing.T) {
		b, cb := start()
		u, _ := url.Parse(cb)
		q := url.Values{"state": {u.Query().Get("state")}, "code": {"not-a-code"}}
		b.stopAt = testRedirect
		loc, _, err := b.walk(e.base + PathCallback + "?" + q.Encode())
		if err != nil || loc == nil || loc.Query().Get("error") != ErrCodeAccessDenied || loc.Query().Has("code") {
			t.Errorf("bad upstream code: %v %v", loc, err)
		}
	})
}

// The consent cookie stays small and keeps the newest approvals.
func TestConsentCookieBounded(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	browser := store.NewSecret()
	var cookie *http.Cookie
	for i := range maxConsents + 5 {
		req := httptest.NewRequest("POST", "/authorize", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		e.auth.rememberConsent(rec, req, browser, cimdClient(i))
		for _, c := range rec.Result().Cookies() {
			if c.Name == cookieConsent {
				cookie = c
			}
		}
	}
	if len(cookie.Value) > 2048 {
		t.Errorf("consent cookie is %d bytes", len(cookie.Value))
	}
	req := httptest.NewRequest("GET", "/authorize", nil)
	req.AddCookie(cookie)
	last, first := cimdClient(maxConsents+4), cimdClient(0)
	if !e.auth.hasConsent(req, browser, last) || e.auth.hasConsent(req, browser, first) {
		t.Error("the cookie should hold the newest approvals and drop the oldest")
	}
	if e.auth.hasConsent(req, store.NewSecret(), last) {
		t.Error("the consent cookie works with another browser id")
	}
}

func cimdClient(i int) store.Client {
	return store.Client{ID: "https://client.example/" + strings.Repeat("x", 900) + strconv.Itoa(i), RedirectURIs: []string{testRedirect}}
}
