package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"

	"github.com/toolgate/toolgate/core/internal/testutil"
)

var (
	keyOnce sync.Once
	devKey  *rsa.PrivateKey
)

// signingKey is one RSA key for every test's development AuthKit (key
// generation dominates test time otherwise).
func signingKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		devKey = k
	})
	return devKey
}

// syncBuffer collects log output the test reads while the server runs.
type syncBuffer = testutil.SyncBuffer

// testEnv is a real toolgate auth stack over HTTP: our Server, the
// development AuthKit mounted at /_dev/authkit and reached through the real
// workos-go client, a Badger store on a temp dir, and /mcp and /sse
// handlers that echo the caller as JSON.
type testEnv struct {
	t    testing.TB
	ts   *httptest.Server
	base string
	auth *Server
	dev  *devauthkit.Server
	st   store.Store
	logs *syncBuffer
	up   Upstream
}

// wrapStore, when set by a test before newTestEnv, wraps the store.
var wrapStore func(store.Store) store.Store

// newTestEnv starts a test stack; mutate, when not nil, edits the Config
// before New, and wrapUp, when not nil, wraps the upstream.
func newTestEnv(t testing.TB, mutate func(*Config), wrapUp func(Upstream) Upstream) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := httptest.NewUnstartedServer(nil)
	addr := ts.Listener.Addr().String()
	base := "http://" + addr

	bs, err := badgerstore.Open(context.Background(), badgerstore.Options{Dir: t.TempDir(), GCInterval: -1, Logger: logger})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	var st store.Store = bs
	if wrapStore != nil {
		st = wrapStore(bs)
	}
	dev, err := devauthkit.New(devauthkit.Config{
		ListenAddr:   addr,
		BaseURL:      base + devauthkit.MountPath,
		RedirectURIs: []string{base + PathCallback},
		Key:          signingKey(t),
		Logger:       logger,
	})
	if err != nil {
		t.Fatalf("devauthkit: %v", err)
	}
	var up Upstream
	up, err = authkit.New(authkit.Config{ClientID: dev.ClientID(), APIKey: dev.APIKey(), APIBaseURL: dev.BaseURL(), Logger: logger})
	if err != nil {
		t.Fatalf("authkit: %v", err)
	}
	if wrapUp != nil {
		up = wrapUp(up)
	}
	cfg := Config{PublicURL: base, CookieKey: bytes.Repeat([]byte("k"), 32)}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, st, up, logger)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	mux := http.NewServeMux()
	a.Mount(mux)
	mux.Handle(devauthkit.MountPath+"/", http.StripPrefix(devauthkit.MountPath, dev))
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := CallerFromContext(r.Context())
		if !ok {
			http.Error(w, "no caller", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
	})
	mux.Handle(PathMCP, a.Protect(PathMCP, echo))
	mux.Handle(PathSSE, a.Protect(PathSSE, echo))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		_ = a.Close()
		_ = st.Close()
	})
	return &testEnv{t: t, ts: ts, base: base, auth: a, dev: dev, st: st, logs: logs, up: up}
}

// registered is a registration response as a test reads it.
type registered struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
}

const testRedirect = "http://127.0.0.1:5555/cb"

// register registers a client with metadata (JSON) and fails the test
// unless the answer is 201.
func (e *testEnv) register(metadata string) registered {
	e.t.Helper()
	resp, body := e.do("POST", PathRegister, "application/json", metadata, nil)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("register: status %d, body %s", resp.StatusCode, body)
	}
	var r registered
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatalf("register: %v", err)
	}
	return r
}

// publicClient registers a public client with refresh tokens.
func (e *testEnv) publicClient() registered {
	return e.register(`{"redirect_uris":["` + testRedirect + `"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"client_name":"Test Client"}`)
}

// do sends a request to the server and returns the response and its body.
func (e *testEnv) do(method, path, contentType, body string, hdr http.Header) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// postForm posts a form to path.
func (e *testEnv) postForm(path string, form url.Values, hdr http.Header) (*http.Response, []byte) {
	e.t.Helper()
	return e.do("POST", path, "application/x-www-form-urlencoded", form.Encode(), hdr)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// browser is a cookie-keeping user agent that walks the sign-in: it
// approves the consent page and presses a dev user's button on the
// development AuthKit's login page, and stops at the first redirect to
// stopAt (the client's redirect URI).
type browser struct {
	t       testing.TB
	client  *http.Client
	jar     *cookiejar.Jar
	user    string // dev user email to sign in as
	consent string // "approve" or "deny"
	stopAt  string // URL prefix where the walk ends
	// consentPages counts consent pages seen.
	consentPages int
	// lastPage is the body of the last HTML page, consentPage of the last
	// consent page.
	lastPage, consentPage string
}

func newBrowser(t testing.TB, user string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{
		t:       t,
		jar:     jar,
		client:  &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		user:    user,
		consent: "approve",
		stopAt:  "http://127.0.0.1:5555/",
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// walk starts at target and follows redirects and forms until a redirect
// to stopAt, which it returns; or returns the error page's status.
func (b *browser) walk(target string) (*url.URL, int, error) {
	req, _ := http.NewRequest("GET", target, nil)
	for range 20 {
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, 0, err
			}
			if strings.HasPrefix(loc.String(), b.stopAt) {
				return loc, resp.StatusCode, nil
			}
			req, _ = http.NewRequest("GET", loc.String(), nil)
		case resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "text/html"):
			b.lastPage = string(body)
			form := url.Values{}
			for _, m := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			var action string
			if form.Has("login_id") { // development AuthKit login page
				form.Set("email", b.user)
				action = "authorize"
			} else if form.Has("request") { // our consent page
				b.consentPages++
				b.consentPage = string(body)
				form.Set("action", b.consent)
				action = "authorize"
			} else {
				return nil, resp.StatusCode, fmt.Errorf("unexpected page: %s", body)
			}
			u, _ := resp.Request.URL.Parse(action)
			req, _ = http.NewRequest("POST", u.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			b.lastPage = string(body)
			return nil, resp.StatusCode, nil
		}
	}
	return nil, 0, fmt.Errorf("too many steps")
}

// pkce returns a fresh verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	v := store.NewSecret() + "abc"
	return v, s256(v)
}

// authorizeURL builds an /authorize URL for client with the given extra
// parameters (which replace the defaults).
func (e *testEnv) authorizeURL(clientID, challenge string, extra url.Values) string {
	q := url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {testRedirect},
		"response_type":         {"code"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"client-state-123"},
		"resource":              {e.base + PathMCP},
	}
	for k, v := range extra {
		q[k] = v
	}
	return e.base + PathAuthorize + "?" + q.Encode()
}

// getCode runs the browser flow for clientID as user and returns the code
// from the client redirect.
func (e *testEnv) getCode(b *browser, clientID, challenge string) string {
	e.t.Helper()
	loc, status, err := b.walk(e.authorizeURL(clientID, challenge, nil))
	if err != nil || loc == nil {
		e.t.Fatalf("authorize walk: status %d, err %v, page %s", status, err, b.lastPage)
	}
	q := loc.Query()
	if q.Get("code") == "" {
		e.t.Fatalf("no code in redirect %s", loc.Redacted())
	}
	if q.Get("state") != "client-state-123" || q.Get("iss") != e.base {
		e.t.Fatalf("redirect state %q iss %q, want client-state-123 and %q", q.Get("state"), q.Get("iss"), e.base)
	}
	return q.Get("code")
}

// tokens is a token endpoint answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

// token posts form to /token and decodes the answer.
func (e *testEnv) token(form url.Values, hdr http.Header) (int, tokens) {
	e.t.Helper()
	resp, body := e.postForm(PathToken, form, hdr)
	var tk tokens
	if err := json.Unmarshal(body, &tk); err != nil {
		e.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("token response Cache-Control = %q, want no-store", cc)
	}
	return resp.StatusCode, tk
}

// exchange redeems code for a public client.
func (e *testEnv) exchange(clientID, code, verifier string) (int, tokens) {
	e.t.Helper()
	return e.token(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {testRedirect}, "resource": {e.base + PathMCP},
	}, nil)
}

// refreshWith refreshes for a public client.
func (e *testEnv) refreshWith(clientID, rt string) (int, tokens) {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}, nil)
}

// callMCP calls /mcp with an access token and returns the status and the
// echoed caller.
func (e *testEnv) callMCP(access string) (int, Caller, *http.Response) {
	e.t.Helper()
	resp, body := e.do("POST", PathMCP, "application/json", `{}`, http.Header{"Authorization": {"Bearer " + access}})
	var c Caller
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &c); err != nil {
			e.t.Fatalf("mcp echo: %v", err)
		}
	}
	return resp.StatusCode, c, resp
}

// signIn registers a public client and runs the whole flow as user,
// returning the client and its first tokens.
func (e *testEnv) signIn(user string) (registered, tokens) {
	e.t.Helper()
	c := e.publicClient()
	v, ch := pkce()
	code := e.getCode(newBrowser(e.t, user), c.ClientID, ch)
	status, tk := e.exchange(c.ClientID, code, v)
	if status != http.StatusOK {
		e.t.Fatalf("exchange: %d %+v", status, tk)
	}
	return c, tk
}

// copyBody copies and closes a response body.
func copyBody(w *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
