package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// cimdHost is a TLS server on loopback serving client metadata documents;
// docs maps a path to a handler, hits counts requests per path.
type cimdHost struct {
	ts   *httptest.Server
	hits map[string]*atomic.Int32
}

func newCIMDHost(t testing.TB, docs map[string]http.HandlerFunc) *cimdHost {
	h := &cimdHost{hits: map[string]*atomic.Int32{}}
	mux := http.NewServeMux()
	for p, fn := range docs {
		n := &atomic.Int32{}
		h.hits[p] = n
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { n.Add(1); fn(w, r) })
	}
	h.ts = httptest.NewTLSServer(mux)
	t.Cleanup(h.ts.Close)
	return h
}

// trust makes e's CIMD fetcher trust the host's certificate and reach
// loopback.
func (h *cimdHost) trust(e *testEnv) {
	pool := h.ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	e.auth.cimd = newCIMDFetcher(e.auth.cfg.Scopes, e.auth.cfg.Now, true, &tls.Config{RootCAs: pool})
}

func (h *cimdHost) url(path string) string { return h.ts.URL + path }

// serveDoc answers with a document whose client_id is the request URL.
func serveDoc(extra string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		id := "https://" + r.Host + r.URL.Path
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"CIMD Client","redirect_uris":[%q],"grant_types":["authorization_code","refresh_token"]%s}`, id, testRedirect, extra)
	}
}

// Checklist 22, 25, 27: the go-sdk client authorizes with a client-id
// metadata document served by a local test server.
func TestEndToEndCIMDClient(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	host := newCIMDHost(t, map[string]http.HandlerFunc{"/client.json": serveDoc("")})
	host.trust(e)
	b := newBrowser(t, "alice@example.com")
	h, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &sdkauth.ClientIDMetadataDocumentConfig{URL: host.url("/client.json")},
		RedirectURL:                    testRedirect,
		AuthorizationCodeFetcher: func(_ context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
			loc, status, err := b.walk(args.URL)
			if err != nil || loc == nil {
				return nil, fmt.Errorf("walk: status %d, %v: %s", status, err, b.lastPage)
			}
			q := loc.Query()
			return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.base+PathMCP, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Authorize(context.Background(), req, resp); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	src, _ := h.TokenSource(context.Background())
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	st, caller, _ := e.callMCP(tok.AccessToken)
	if st != http.StatusOK || caller.ClientID != host.url("/client.json") || caller.Email != "alice@example.com" {
		t.Errorf("/mcp: %d %+v", st, caller)
	}
	if !strings.Contains(b.consentPage, "CIMD Client") {
		t.Errorf("consent page does not name the client")
	}
}

// Checklist 23-26, 28: every unusable client-id URL or document gives an
// error page (never a redirect), and only good documents are cached.
func TestCIMDNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	big := `,"x":"` + strings.Repeat("a", MaxCIMDBytes) + `"`
	host := newCIMDHost(t, map[string]http.HandlerFunc{
		"/good.json":     serveDoc("", "Cache-Control", "max-age=60"),
		"/nostore.json":  serveDoc("", "Cache-Control", "no-store"),
		"/redirect.json": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/good.json", http.StatusFound) },
		"/missing.json":  func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
		"/error.json":    func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
		"/big.json":      serveDoc(big),
		"/text.json":     serveDoc("", "Content-Type", "text/html"),
		"/mismatch.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":"https://other.example/c.json","client_name":"x","redirect_uris":[%q]}`, testRedirect)
		},
		"/noname.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":"https://%s/noname.json","redirect_uris":[%q]}`, r.Host, testRedirect)
		},
		"/secret.json": serveDoc(`,"client_secret":"s"`),
		"/basic.json":  serveDoc(`,"token_endpoint_auth_method":"client_secret_basic"`),
		"/pkjwt.json":  serveDoc(`,"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://x.example/jwks"`),
		"/badredir.json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":"https://%s/badredir.json","client_name":"x","redirect_uris":["http://evil.example/cb"]}`, r.Host)
		},
		"/plusjson.json": serveDoc("", "Content-Type", "application/vnd.client+json"),
	})
	host.trust(e)
	_, ch := pkce()
	authorize := func(clientID string) (*http.Response, []byte) {
		return e.do("GET", strings.TrimPrefix(e.authorizeURL(clientID, ch, nil), e.base), "", "", nil)
	}
	tests := []struct {
		name, clientID string
		ok             bool
	}{
		{"good", host.url("/good.json"), true},
		{"+json media type", host.url("/plusjson.json"), true},
		{"http scheme", strings.Replace(host.url("/good.json"), "https:", "http:", 1), false},
		{"root path", host.url("/"), false},
		{"no path", host.url(""), false},
		{"query", host.url("/good.json?x=1"), false},
		{"fragment", host.url("/good.json#f"), false},
		{"user info", strings.Replace(host.url("/good.json"), "https://", "https://u@", 1), false},
		{"dot segment", host.url("/a/../good.json"), false},
		{"redirect not followed", host.url("/redirect.json"), false},
		{"404", host.url("/missing.json"), false},
		{"500", host.url("/error.json"), false},
		{"too large", host.url("/big.json"), false},
		{"not json", host.url("/text.json"), false},
		{"client_id mismatch", host.url("/mismatch.json"), false},
		{"no client_name", host.url("/noname.json"), false},
		{"client_secret", host.url("/secret.json"), false},
		{"shared-secret method", host.url("/basic.json"), false},
		{"private_key_jwt", host.url("/pkjwt.json"), false},
		{"bad redirect uri", host.url("/badredir.json"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := authorize(tt.clientID)
			if tt.ok {
				if resp.StatusCode != 200 {
					t.Errorf("status %d, want the consent page: %s", resp.StatusCode, body)
				}
				return
			}
			m := pageErrorCode.FindSubmatch(body)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || m == nil || string(m[1]) != ErrCodeInvalidClient {
				t.Errorf("got %d %q Location %q, want a 400 invalid_client page", resp.StatusCode, m, resp.Header.Get("Location"))
			}
		})
	}
	// Cache: a good document is fetched once, errors and no-store never
	// cached.
	for path, want := range map[string]int32{"/good.json": 1, "/error.json": 2, "/nostore.json": 2} {
		host.hits[path].Store(0)
		if path == "/good.json" {
			authorize(host.url(path)) // cached above already: make sure of one more
			host.hits[path].Store(0)
			want = 0
		}
		authorize(host.url(path))
		authorize(host.url(path))
		if got := host.hits[path].Load(); got != want {
			t.Errorf("%s fetched %d times for two authorizations, want %d", path, got, want)
		}
	}
}

// Checklist 29: special-use addresses are refused at dial time, so no
// connection is ever made to them (and DNS rebinding cannot get around it).
func TestCIMDSpecialUseAddresses(t *testing.T) {
	var connected atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { connected.Add(1) }))
	defer srv.Close()
	f := newCIMDFetcher([]string{DefaultScope}, time.Now, false, nil)
	u, _ := url.Parse(srv.URL)
	for _, id := range []string{
		srv.URL + "/client.json",
		"https://localhost:" + u.Port() + "/client.json",
		"https://[::1]:" + u.Port() + "/client.json",
		"https://[::ffff:127.0.0.1]:" + u.Port() + "/client.json",
		"https://[::ffff:169.254.169.254]/client.json",
		"https://10.0.0.1/client.json",
		"https://0.0.0.0:" + u.Port() + "/client.json",
	} {
		_, err := f.get(context.Background(), id)
		if !errors.Is(err, errCIMD) || !strings.Contains(err.Error(), "special-use") {
			t.Errorf("%s: err %v, want a special-use refusal", id, err)
		}
	}
	if n := connected.Load(); n != 0 {
		t.Errorf("%d requests reached a loopback server", n)
	}
}

func TestSpecialUse(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "169.254.169.254": true, "100.64.0.1": true, "192.0.0.8": true,
		"198.18.0.1": true, "240.0.0.1": true, "0.1.2.3": true, "::1": true, "::ffff:10.0.0.1": true,
		"64:ff9b::a00:1": true, "fe80::1": true, "fd00::1": true, "2001:db8::1": true, "ff02::1": true,
		"8.8.8.8": false, "1.1.1.1": false, "2606:4700::1111": false, "::ffff:8.8.8.8": false,
	} {
		if got := specialUse(netip.MustParseAddr(addr)); got != want {
			t.Errorf("specialUse(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                      cimdDefaultTTL,
		"max-age=60":            cimdMinCacheTTL,
		"public, max-age=7200":  2 * time.Hour,
		"max-age=99999999":      cimdMaxCacheTTL,
		"no-store":              0,
		"max-age=600, no-cache": 0,
		"max-age=abc":           cimdDefaultTTL,
	} {
		if got := cacheTTL(cc); got != want {
			t.Errorf("cacheTTL(%q) = %s, want %s", cc, got, want)
		}
	}
}

// FuzzCIMDDocument checks that every accepted document yields a public
// client with valid redirect URIs.
func FuzzCIMDDocument(f *testing.F) {
	const id = "https://client.example/meta.json"
	f.Add(`{"client_id":"` + id + `","client_name":"x","redirect_uris":["http://127.0.0.1/cb"]}`)
	f.Add(`{"client_id":"` + id + `","client_name":"x","redirect_uris":["https://a.example/cb"],"client_secret":"s"}`)
	f.Add(`{"client_id":"` + id + `"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := parseCIMD(id, []byte(body), []string{DefaultScope})
		if err != nil {
			if !errors.Is(err, errCIMD) {
				t.Fatalf("error %v does not wrap errCIMD", err)
			}
			return
		}
		if c.ID != id || c.TokenEndpointAuthMethod != authNone || c.SecretHash != "" || c.Name == "" || len(c.RedirectURIs) == 0 {
			t.Fatalf("accepted %+v", c)
		}
		for _, u := range c.RedirectURIs {
			if _, problem := checkRedirectURI(u); problem != "" {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}

// FuzzCIMDURL checks the client-id URL shape rules.
func FuzzCIMDURL(f *testing.F) {
	f.Add("https://client.example/meta.json")
	f.Add("https://client.example/")
	f.Add("https://u@client.example/a/../b")
	f.Fuzz(func(t *testing.T, raw string) {
		if checkCIMDURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path == "" || u.Path == "/" || strings.Contains(u.Path, "/../") {
			t.Fatalf("accepted %q", raw)
		}
	})
}

// Checklist 32: when a client's metadata document changes its redirect
// URIs, the stored client follows and the browser is asked again.
func TestCIMDDocumentChangeAsksAgain(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	var redirects atomic.Value
	redirects.Store(`["` + testRedirect + `"]`)
	host := newCIMDHost(t, map[string]http.HandlerFunc{"/c.json": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, `{"client_id":"https://%s/c.json","client_name":"Changing","redirect_uris":%s}`, r.Host, redirects.Load())
	}})
	host.trust(e)
	b := newBrowser(t, "alice@example.com")
	id := host.url("/c.json")
	_, ch := pkce()
	e.getCode(b, id, ch)
	e.getCode(b, id, ch)
	if b.consentPages != 1 {
		t.Fatalf("consent pages = %d, want 1", b.consentPages)
	}
	redirects.Store(`["` + testRedirect + `","https://new.example/cb"]`)
	e.getCode(b, id, ch)
	if b.consentPages != 2 {
		t.Errorf("consent pages = %d after the document changed, want 2", b.consentPages)
	}
	c, err := e.st.GetClient(context.Background(), id)
	if err != nil || len(c.RedirectURIs) != 2 {
		t.Errorf("stored client %+v, %v: want the new redirect URIs", c, err)
	}
}
