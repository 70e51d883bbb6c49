package auth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/core/store"
)

// noCIMD turns client ID metadata documents off: a fuzzed https client_id
// must not make the fuzzer fetch from the network (FuzzCIMDDocument and
// FuzzCIMDURL cover those parsers).
func noCIMD(c *Config) { c.DisableCIMD = true }

// FuzzAuthorizeQuery feeds arbitrary query strings to /authorize: never a
// 500 or a panic, a redirect only to a registered redirect URI, and a
// consent page only for a fully valid request.
func FuzzAuthorizeQuery(f *testing.F) {
	e := newTestEnv(f, noCIMD, nil)
	c := e.publicClient()
	_, ch := pkce()
	valid := strings.TrimPrefix(e.authorizeURL(c.ClientID, ch, nil), e.base+PathAuthorize+"?")
	f.Add(valid)
	f.Add("client_id=" + c.ClientID)
	f.Add(valid + "&state=a&state=b")
	f.Add(strings.Replace(valid, "S256", "plain", 1))
	f.Add("client_id=%zz&redirect_uri=%")
	f.Add("client_id=" + c.ClientID + "&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&response_type=code")
	f.Add(";;&&==")
	f.Fuzz(func(t *testing.T, query string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/authorize", nil)
		req.URL.RawQuery = query
		e.auth.handleAuthorize(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		case http.StatusSeeOther:
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatalf("bad Location: %v", err)
			}
			loc.RawQuery = ""
			if loc.Scheme != "http" || loc.Hostname() != "127.0.0.1" || loc.Path != "/cb" {
				t.Fatalf("redirect to %q, not a registered redirect URI", rec.Header().Get("Location"))
			}
		default:
			t.Fatalf("status %d for query %q", rec.Code, query)
		}
	})
}

// FuzzTokenForm feeds arbitrary form bodies to /token: never a 500 or a
// panic, and never a token.
func FuzzTokenForm(f *testing.F) {
	e := newTestEnv(f, noCIMD, nil)
	c := e.publicClient()
	f.Add("grant_type=authorization_code&code=x&code_verifier=" + strings.Repeat("a", 43) + "&client_id=" + c.ClientID)
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=" + c.ClientID)
	f.Add("grant_type=authorization_code&code=" + strings.Repeat("a", 32) + ".x&code_verifier=" + strings.Repeat("a", 43) + "&client_id=" + c.ClientID)
	f.Add("grant_type=%zz")
	f.Add("client_id=" + c.ClientID + "&client_id=" + c.ClientID)
	f.Add("")
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		e.auth.handleToken(rec, req)
		if rec.Code >= 500 || rec.Code == http.StatusOK {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("response is cacheable")
		}
	})
}

// FuzzRegistration checks that every accepted registration satisfies our
// invariants.
func FuzzRegistration(f *testing.F) {
	f.Add(`{"redirect_uris":["https://a.example/cb"]}`)
	f.Add(`{"redirect_uris":["http://127.0.0.1:1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
	f.Add(`{"redirect_uris":["cursor://x/cb"],"scope":"mcp:tools","client_name":"é"}`)
	f.Add(`{"redirect_uris":["javascript:alert(1)"]}`)
	f.Add(`{"redirect_uris":null,"grant_types":[]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		reg, e := parseRegistration([]byte(body), []string{DefaultScope})
		if e != nil {
			if e.Code != ErrCodeInvalidClientMetadata && e.Code != ErrCodeInvalidRedirectURI {
				t.Fatalf("error code %q", e.Code)
			}
			return
		}
		if len(reg.RedirectURIs) == 0 || len(reg.RedirectURIs) > MaxRedirectURIs {
			t.Fatalf("accepted %d redirect URIs", len(reg.RedirectURIs))
		}
		for _, u := range reg.RedirectURIs {
			k, problem := checkRedirectURI(u)
			if problem != "" || k == 0 || strings.Contains(u, "#") {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
		if !slices.Contains(authMethods, *reg.TokenEndpointAuthMethod) || !slices.Contains(reg.GrantTypes, grantAuthCode) {
			t.Fatalf("accepted %+v", reg)
		}
	})
}

// FuzzRedirectMatch checks that a loopback match never changes anything but
// the port.
func FuzzRedirectMatch(f *testing.F) {
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:5555/cb")
	f.Add("http://localhost/cb", "http://localhost:1/cb?x")
	f.Add("https://a.example/cb", "https://a.example/cb")
	f.Add("http://[::1]/cb", "http://[::1]:80/cb#x")
	f.Fuzz(func(t *testing.T, registered, requested string) {
		if !matchRedirectURI(registered, requested) || registered == requested {
			return
		}
		ru, err1 := url.Parse(registered)
		qu, err2 := url.Parse(requested)
		if err1 != nil || err2 != nil || ru.Scheme != "http" || qu.Scheme != "http" || ru.Hostname() != qu.Hostname() ||
			ru.EscapedPath() != qu.EscapedPath() || ru.RawQuery != qu.RawQuery || qu.User != nil || strings.Contains(requested, "#") {
			t.Fatalf("%q matched %q", requested, registered)
		}
	})
}

// FuzzBearerHeader checks the Authorization header parser.
func FuzzBearerHeader(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer  abc")
	f.Add("Bearer a b")
	f.Add("Basic x")
	f.Add("Bearer ")
	f.Fuzz(func(t *testing.T, h string) {
		tok, problem := bearerToken([]string{h})
		if tok != "" && (problem != "" || strings.ContainsAny(tok, " \t")) {
			t.Fatalf("token %q problem %q from %q", tok, problem, h)
		}
	})
}

// FuzzConsentCookie checks that no cookie value verifies without the key.
func FuzzConsentCookie(f *testing.F) {
	e := newTestEnv(f, nil, nil)
	f.Add("YWJjOjk5OTk5OTk5OTk.sig", "browser-id-browser-id-browser-id-browser-id")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, value, browser string) {
		req := httptest.NewRequest("GET", "/authorize", nil)
		req.AddCookie(&http.Cookie{Name: cookieConsent, Value: value})
		if got := e.auth.readConsents(req, browser); len(got) != 0 {
			t.Fatalf("forged consent cookie %q accepted: %v", value, got)
		}
	})
}

// FuzzRevokeForm feeds arbitrary form bodies and Authorization headers to
// /revoke (RFC 7009): never a 500 or a panic, never a cacheable answer,
// and never the revocation of a token the request did not prove it owns.
// The victim is a confidential client whose secret the fuzzer never sees;
// the attacker is a public client. In the inputs, {A} and {V} stand for
// the attacker's and the victim's client ids, {AT} and {RT} for the
// victim's access and refresh tokens, so the committed seeds in
// testdata/fuzz/FuzzRevokeForm aim at real tokens.
func FuzzRevokeForm(f *testing.F) {
	e := newTestEnv(f, noCIMD, nil)
	attacker := e.publicClient()
	victim := e.register(`{"redirect_uris":["` + testRedirect + `"],"grant_types":["authorization_code","refresh_token"],"client_name":"Victim"}`)
	v, ch := pkce()
	code := e.getCode(newBrowser(f, "alice@example.com"), victim.ClientID, ch)
	status, tk := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}}, basicAuth(victim.ClientID, victim.ClientSecret))
	if status != http.StatusOK {
		f.Fatalf("victim's code exchange: %d %+v", status, tk)
	}
	fill := strings.NewReplacer("{A}", attacker.ClientID, "{V}", victim.ClientID, "{AT}", tk.AccessToken, "{RT}", tk.RefreshToken)

	f.Add("token={AT}&client_id={A}", "")
	f.Add("token={RT}&client_id={A}&token_type_hint=refresh_token", "")
	f.Add("token={RT}&client_id={V}", "")
	f.Add("token={RT}&client_id={V}&client_secret=guess", "")
	f.Add("token={AT}", "Basic "+base64.StdEncoding.EncodeToString([]byte(victim.ClientID+":guess")))
	f.Add("token={AT}", "Basic "+base64.StdEncoding.EncodeToString([]byte(attacker.ClientID+":")))
	f.Add("token={AT}&client_id={A}", "Bearer {AT}")
	f.Add("token={AT}&token={RT}&client_id={A}", "")
	f.Add("token=garbage&client_id={A}", "")
	f.Add("token=&client_id={A}", "")
	f.Add("token="+strings.Repeat("x", 200)+"&client_id={A}", "")
	f.Add("%zz", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, body, authorization string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", PathRevoke, strings.NewReader(fill.Replace(body)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			req.Header.Set("Authorization", fill.Replace(authorization))
		}
		e.auth.handleRevoke(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if rec.Body.Len() != 0 {
				t.Fatalf("200 with a body: %s", rec.Body)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for body %q, Authorization %q: %s", rec.Code, body, authorization, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d is cacheable", rec.Code)
		}
		for name, tok := range map[string]string{"access": tk.AccessToken, "refresh": tk.RefreshToken} {
			if _, err := e.st.GetToken(t.Context(), store.HashSecret(tok)); err != nil {
				t.Fatalf("the victim's %s token is gone after body %q, Authorization %q: %v", name, body, authorization, err)
			}
		}
	})
}
