package devauthkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func signingKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

const (
	testRedirect = "http://127.0.0.1:9999/callback"
	testBase     = "http://127.0.0.1:8788/_dev/authkit"
)

// recordingHandler captures log records.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func newTestServer(t testing.TB, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		ListenAddr:   "127.0.0.1:8788",
		BaseURL:      testBase,
		RedirectURIs: []string{testRedirect},
		Key:          signingKey(t),
		Logger:       slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeQuery(s *Server, challenge string) url.Values {
	return url.Values{
		"client_id": {s.ClientID()}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"provider": {"authkit"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"state": {"st"},
	}
}

func do(s *Server, req *http.Request) *httptest.ResponseRecorder {
	if req.RemoteAddr == "" || req.RemoteAddr == "192.0.2.1:1234" {
		req.RemoteAddr = "127.0.0.1:40000"
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
)

// login renders the login page and presses the button of email, returning
// the redirect location.
func login(t *testing.T, s *Server, q url.Values, email string) *httptest.ResponseRecorder {
	t.Helper()
	rec := do(s, httptest.NewRequest(http.MethodGet, "/user_management/authorize?"+q.Encode(), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET authorize: %d %s", rec.Code, rec.Body)
	}
	form := url.Values{"email": {email}}
	for _, m := range hiddenRE.FindAllStringSubmatch(rec.Body.String(), -1) {
		form.Set(m[1], m[2])
	}
	req := httptest.NewRequest(http.MethodPost, "/user_management/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	return do(s, req)
}

func authenticate(s *Server, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, "/user_management/authenticate", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	rec := do(s, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestAuthorizeValidation(t *testing.T) {
	s := newTestServer(t, nil)
	good := authorizeQuery(s, challengeOf(strings.Repeat("v", 43)))
	tests := []struct {
		name   string
		mutate func(url.Values)
		want   int
	}{
		{name: "valid", mutate: func(url.Values) {}, want: http.StatusOK},
		{name: "wrong client id", mutate: func(q url.Values) { q.Set("client_id", "client_other") }, want: http.StatusBadRequest},
		{name: "unregistered redirect uri", mutate: func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9999/other") }, want: http.StatusBadRequest},
		{name: "redirect uri prefix", mutate: func(q url.Values) { q.Set("redirect_uri", testRedirect+"x") }, want: http.StatusBadRequest},
		{name: "response type token", mutate: func(q url.Values) { q.Set("response_type", "token") }, want: http.StatusBadRequest},
		{name: "provider google", mutate: func(q url.Values) { q.Set("provider", "GoogleOAuth") }, want: http.StatusBadRequest},
		{name: "connection id", mutate: func(q url.Values) { q.Set("connection_id", "conn_1") }, want: http.StatusBadRequest},
		{name: "no code challenge", mutate: func(q url.Values) { q.Del("code_challenge") }, want: http.StatusBadRequest},
		{name: "plain pkce", mutate: func(q url.Values) { q.Set("code_challenge_method", "plain") }, want: http.StatusBadRequest},
		{name: "short challenge", mutate: func(q url.Values) { q.Set("code_challenge", "abc") }, want: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range good {
				q[k] = append([]string(nil), v...)
			}
			tc.mutate(q)
			rec := do(s, httptest.NewRequest(http.MethodGet, "/user_management/authorize?"+q.Encode(), nil))
			if rec.Code != tc.want {
				t.Errorf("status = %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("page is frameable: headers %v", rec.Header())
			}
		})
	}
}

func TestLoginCSRF(t *testing.T) {
	s := newTestServer(t, nil)
	q := authorizeQuery(s, challengeOf(strings.Repeat("v", 43)))
	page := do(s, httptest.NewRequest(http.MethodGet, "/user_management/authorize?"+q.Encode(), nil))
	hidden := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page.Body.String(), -1) {
		hidden.Set(m[1], m[2])
	}
	cookies := page.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != browserCookie || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies = %+v, want one HttpOnly SameSite=Strict browser cookie", cookies)
	}
	post := func(form url.Values, withCookie bool) int {
		req := httptest.NewRequest(http.MethodPost, "/user_management/authorize", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if withCookie {
			req.AddCookie(cookies[0])
		}
		return do(s, req).Code
	}
	base := url.Values{"login_id": {hidden.Get("login_id")}, "csrf_token": {hidden.Get("csrf_token")}, "email": {"alice@example.com"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range base {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	if got := post(with("csrf_token", "forged"), true); got != http.StatusForbidden {
		t.Errorf("forged csrf token: status %d, want 403", got)
	}
	if got := post(base, false); got != http.StatusForbidden {
		t.Errorf("missing browser cookie: status %d, want 403", got)
	}
	if got := post(with("email", "mallory@example.com"), true); got != http.StatusBadRequest {
		t.Errorf("unknown user: status %d, want 400", got)
	}
	if got := post(with("login_id", "nope"), true); got != http.StatusBadRequest {
		t.Errorf("unknown login id: status %d, want 400", got)
	}
	if got := post(base, true); got != http.StatusSeeOther {
		t.Fatalf("valid press: status %d, want 303", got)
	}
	if got := post(base, true); got != http.StatusBadRequest {
		t.Errorf("replayed press: status %d, want 400", got)
	}
}

func TestCodeGrant(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now
	s := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return clock } })
	verifier := strings.Repeat("abcdefgh", 6)
	redeem := func(code, v string) (int, map[string]any) {
		return authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "authorization_code",
			"code": code, "code_verifier": v,
		})
	}
	newCode := func() string {
		rec := login(t, s, authorizeQuery(s, challengeOf(verifier)), "alice@example.com")
		loc, err := url.Parse(rec.Header().Get("Location"))
		if err != nil || rec.Code != http.StatusSeeOther {
			t.Fatalf("login: %d %v", rec.Code, err)
		}
		if loc.Query().Get("state") != "st" || !strings.HasPrefix(loc.String(), testRedirect+"?") {
			t.Fatalf("redirect = %s", loc)
		}
		return loc.Query().Get("code")
	}

	status, body := redeem(newCode(), verifier)
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, body)
	}
	user, _ := body["user"].(map[string]any)
	if user["object"] != "user" || user["email"] != "alice@example.com" || user["first_name"] != "Alice" || user["email_verified"] != true {
		t.Errorf("user object = %v", user)
	}
	for _, k := range []string{"organization_id", "access_token", "refresh_token", "authentication_method"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("%s missing in %v", k, body)
		}
	}
	if v, ok := body["impersonator"]; !ok || v != nil {
		t.Errorf("impersonator = %v (present %v), want null", v, ok)
	}
	claims := decodeClaims(t, body["access_token"].(string))
	for _, k := range []string{"iss", "sub", "sid", "org_id", "role", "permissions", "exp", "iat", "jti"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing: %v", k, claims)
		}
	}
	if claims["iss"] != s.Issuer() || claims["sub"] != user["id"] || claims["org_id"] != body["organization_id"] {
		t.Errorf("claims %v do not match response", claims)
	}

	tests := []struct {
		name     string
		code     func() string
		verifier string
		advance  time.Duration
	}{
		{name: "pkce mismatch", code: newCode, verifier: strings.Repeat("x", 43)},
		{name: "missing verifier", code: newCode, verifier: ""},
		{name: "malformed verifier", code: newCode, verifier: strings.Repeat("!", 43)},
		{name: "unknown code", code: func() string { return "nope" }, verifier: verifier},
		{name: "expired code", code: newCode, verifier: verifier, advance: codeTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code()
			clock = clock.Add(tc.advance)
			status, body := redeem(code, tc.verifier)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["error_description"] == "" {
				t.Errorf("got %d %v, want 400 invalid_grant with a description", status, body)
			}
			// The failed attempt consumed the code.
			if status, _ := redeem(code, verifier); status != http.StatusBadRequest {
				t.Errorf("code usable after a failed attempt: %d", status)
			}
		})
	}
}

func decodeClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClientAuthentication(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name string
		body map[string]string
		want int
		err  string
	}{
		{name: "wrong secret", body: map[string]string{"client_id": s.ClientID(), "client_secret": "sk_wrong", "grant_type": "refresh_token", "refresh_token": "x"}, want: 401, err: "invalid_client"},
		{name: "wrong client", body: map[string]string{"client_id": "client_x", "client_secret": s.APIKey(), "grant_type": "refresh_token", "refresh_token": "x"}, want: 401, err: "invalid_client"},
		{name: "unsupported grant", body: map[string]string{"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "password"}, want: 400, err: "unsupported_grant_type"},
		{name: "unknown refresh token", body: map[string]string{"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "refresh_token", "refresh_token": "x"}, want: 400, err: "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := authenticate(s, tc.body)
			if status != tc.want || body["error"] != tc.err {
				t.Errorf("got %d %v, want %d %s", status, body, tc.want, tc.err)
			}
		})
	}
}

func TestRevokeAndLogout(t *testing.T) {
	s := newTestServer(t, nil)
	verifier := strings.Repeat("q", 43)
	signIn := func() map[string]any {
		rec := login(t, s, authorizeQuery(s, challengeOf(verifier)), "bob@example.com")
		loc, _ := url.Parse(rec.Header().Get("Location"))
		_, body := authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "authorization_code",
			"code": loc.Query().Get("code"), "code_verifier": verifier,
		})
		return body
	}
	refresh := func(rt string) int {
		status, _ := authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "refresh_token", "refresh_token": rt,
		})
		return status
	}
	revoke := func(auth, sid string) int {
		req := httptest.NewRequest(http.MethodPost, "/user_management/sessions/revoke", strings.NewReader(`{"session_id":"`+sid+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		return do(s, req).Code
	}

	body := signIn()
	sid := decodeClaims(t, body["access_token"].(string))["sid"].(string)
	if got := revoke("Bearer sk_wrong", sid); got != http.StatusUnauthorized {
		t.Errorf("revoke with wrong key: %d, want 401", got)
	}
	if got := revoke("Bearer "+s.APIKey(), sid); got != http.StatusOK {
		t.Errorf("revoke: %d, want 200", got)
	}
	if got := refresh(body["refresh_token"].(string)); got != http.StatusBadRequest {
		t.Errorf("refresh after revoke: %d, want 400", got)
	}
	if got := revoke("Bearer "+s.APIKey(), sid); got != http.StatusNotFound {
		t.Errorf("second revoke: %d, want 404", got)
	}

	// Logout ends the session and returns to an allowed origin only.
	body = signIn()
	sid = decodeClaims(t, body["access_token"].(string))["sid"].(string)
	rec := do(s, httptest.NewRequest(http.MethodGet, "/user_management/sessions/logout?"+url.Values{
		"session_id": {sid}, "return_to": {"http://127.0.0.1:9999/bye"},
	}.Encode(), nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "http://127.0.0.1:9999/bye" {
		t.Errorf("logout: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	if got := refresh(body["refresh_token"].(string)); got != http.StatusBadRequest {
		t.Errorf("refresh after logout: %d, want 400", got)
	}
	rec = do(s, httptest.NewRequest(http.MethodGet, "/user_management/sessions/logout?"+url.Values{
		"session_id": {"session_x"}, "return_to": {"https://evil.example/"},
	}.Encode(), nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" {
		t.Errorf("logout to a foreign origin: %d to %q, want a 200 page", rec.Code, rec.Header().Get("Location"))
	}
}

func TestJWKS(t *testing.T) {
	s := newTestServer(t, nil)
	rec := do(s, httptest.NewRequest(http.MethodGet, "/sso/jwks/"+s.ClientID(), nil))
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != http.StatusOK || len(doc.Keys) != 1 {
		t.Fatalf("jwks: %d %s", rec.Code, rec.Body)
	}
	k := doc.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] != s.kid {
		t.Errorf("key = %v", k)
	}
	n, _ := base64.RawURLEncoding.DecodeString(k["n"])
	if !bytes.Equal(n, signingKey(t).N.Bytes()) {
		t.Error("modulus does not match the signing key")
	}
	if rec := do(s, httptest.NewRequest(http.MethodGet, "/sso/jwks/client_other", nil)); rec.Code != http.StatusNotFound {
		t.Errorf("jwks for another client: %d, want 404", rec.Code)
	}
}

func TestLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8788", true},
		{"127.1.2.3:80", true},
		{"[::1]:8788", true},
		{"localhost:8788", true},
		{"LOCALHOST:1", true},
		{"127.0.0.1", true},
		{":8788", false},
		{"0.0.0.0:8788", false},
		{"[::]:8788", false},
		{"192.168.1.10:8788", false},
		{"example.com:8788", false},
		{"localhost.example.com:80", false},
		{"", false},
	}
	for _, tc := range tests {
		if err := CheckLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}

	if _, err := New(Config{ListenAddr: ":8788", BaseURL: testBase, RedirectURIs: []string{testRedirect}, Key: signingKey(t)}); err == nil {
		t.Error("New accepted a listen address on every interface")
	}
	if _, err := New(Config{ListenAddr: "127.0.0.1:8788", BaseURL: "http://tg.example/_dev/authkit", RedirectURIs: []string{testRedirect}, Key: signingKey(t)}); err == nil {
		t.Error("New accepted a non-loopback base URL")
	}

	s := newTestServer(t, nil)
	req := httptest.NewRequest(http.MethodGet, "/sso/jwks/"+s.ClientID(), nil)
	req.RemoteAddr = "203.0.113.9:5555"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("request from a non-loopback address: %d, want 403", rec.Code)
	}
}

func TestNewValidation(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(*Config){
		"no redirect uris":  func(c *Config) { c.RedirectURIs = nil },
		"bad redirect uri":  func(c *Config) { c.RedirectURIs = []string{"/callback"} },
		"no users":          func(c *Config) { c.Users = []User{} },
		"bad email":         func(c *Config) { c.Users = []User{{Email: "alice"}} },
		"duplicate email":   func(c *Config) { c.Users = []User{{Email: "a@x.test"}, {Email: "A@x.test"}} },
		"small key":         func(c *Config) { c.Key = small },
		"client id slash":   func(c *Config) { c.ClientID = "a/b" },
		"base url relative": func(c *Config) { c.BaseURL = "/_dev/authkit" },
	}
	for name, mutate := range tests {
		cfg := Config{ListenAddr: "127.0.0.1:8788", BaseURL: testBase, RedirectURIs: []string{testRedirect}, Key: signingKey(t), Logger: slog.New(slog.DiscardHandler)}
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

func TestStartupWarning(t *testing.T) {
	h := &recordingHandler{}
	s := newTestServer(t, func(c *Config) { c.Logger = slog.New(h) })
	warns := 0
	for _, r := range h.records {
		if r.Level == slog.LevelWarn {
			warns++
			if !strings.Contains(r.Message, "DEVELOPMENT AUTHKIT") {
				t.Errorf("warning = %q", r.Message)
			}
			r.Attrs(func(a slog.Attr) bool {
				if strings.Contains(a.Value.String(), s.APIKey()) {
					t.Errorf("warning logs the api key in %s", a.Key)
				}
				return true
			})
		}
	}
	if warns != 1 {
		t.Errorf("%d WARN lines, want exactly 1", warns)
	}
}

func TestEnabled(t *testing.T) {
	for id, want := range map[string]bool{"": true, "  ": true, "client_123": false} {
		if got := Enabled(id); got != want {
			t.Errorf("Enabled(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestDefaultUsers(t *testing.T) {
	u := DefaultUsers()
	if len(u) != 2 || u[0].Email != "alice@example.com" || u[0].Role != "admin" || len(u[0].Permissions) != 1 || u[0].Permissions[0] != "image_generation" ||
		u[1].Email != "bob@example.com" || u[1].Role != "member" || len(u[1].Permissions) != 0 || u[0].Organization != "Acme" || u[1].Organization != "Acme" {
		t.Errorf("DefaultUsers() = %+v", u)
	}
	s := newTestServer(t, nil)
	if err := s.SetPermissions("nobody@example.com", nil); err == nil {
		t.Error("SetPermissions for an unknown user succeeded")
	}
	if err := s.SetPermissions("ALICE@example.com", []string{"p"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Users()[0].Permissions; len(got) != 1 || got[0] != "p" {
		t.Errorf("permissions after SetPermissions = %q", got)
	}
}

func TestExpiryAndLimits(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	s := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return clock } })
	verifier := strings.Repeat("z", 43)
	rec := login(t, s, authorizeQuery(s, challengeOf(verifier)), "alice@example.com")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	status, body := authenticate(s, map[string]string{
		"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "authorization_code",
		"code": loc.Query().Get("code"), "code_verifier": verifier,
	})
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, body)
	}

	// An unused refresh token expires, and its session is dropped with it.
	clock = clock.Add(refreshTokenTTL)
	status, _ = authenticate(s, map[string]string{
		"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "refresh_token",
		"refresh_token": body["refresh_token"].(string),
	})
	if status != http.StatusBadRequest {
		t.Errorf("expired refresh token: %d, want 400", status)
	}
	s.mu.Lock()
	sessions, refresh := len(s.sessions), len(s.refresh)
	s.mu.Unlock()
	if sessions != 0 || refresh != 0 {
		t.Errorf("%d sessions and %d refresh tokens left after expiry, want 0", sessions, refresh)
	}

	// A full table of pending logins refuses new ones instead of growing.
	s.mu.Lock()
	for i := range maxPending {
		s.pending[fmt.Sprint(i)] = &pendingLogin{expires: clock.Add(time.Minute)}
	}
	s.mu.Unlock()
	page := do(s, httptest.NewRequest(http.MethodGet, "/user_management/authorize?"+authorizeQuery(s, challengeOf(verifier)).Encode(), nil))
	if page.Code != http.StatusTooManyRequests {
		t.Errorf("login page with a full pending table: %d, want 429", page.Code)
	}
	// Once they expire, sign-in works again.
	clock = clock.Add(time.Minute)
	page = do(s, httptest.NewRequest(http.MethodGet, "/user_management/authorize?"+authorizeQuery(s, challengeOf(verifier)).Encode(), nil))
	if page.Code != http.StatusOK {
		t.Errorf("login page after the pending logins expired: %d, want 200", page.Code)
	}
}

func TestRefreshRotation(t *testing.T) {
	s := newTestServer(t, nil)
	verifier := strings.Repeat("r", 43)
	rec := login(t, s, authorizeQuery(s, challengeOf(verifier)), "alice@example.com")
	loc, _ := url.Parse(rec.Header().Get("Location"))
	_, first := authenticate(s, map[string]string{
		"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "authorization_code",
		"code": loc.Query().Get("code"), "code_verifier": verifier,
	})
	refresh := func(rt string) (int, map[string]any) {
		return authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "refresh_token", "refresh_token": rt,
		})
	}
	if err := s.SetPermissions("alice@example.com", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	status, second := refresh(first["refresh_token"].(string))
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, second)
	}
	if second["refresh_token"] == first["refresh_token"] {
		t.Error("refresh token not rotated")
	}
	c1, c2 := decodeClaims(t, first["access_token"].(string)), decodeClaims(t, second["access_token"].(string))
	if c1["sid"] != c2["sid"] || c1["sub"] != c2["sub"] || c1["jti"] == c2["jti"] {
		t.Errorf("claims across refresh: %v then %v", c1, c2)
	}
	if got := fmt.Sprint(c2["permissions"]); got != "[a b]" {
		t.Errorf("permissions after SetPermissions = %s, want [a b]", got)
	}
	status, body := refresh(first["refresh_token"].(string))
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("reused refresh token: %d %v, want 400 invalid_grant", status, body)
	}
	if status, _ := refresh(second["refresh_token"].(string)); status != http.StatusOK {
		t.Errorf("the rotated token stopped working after a reuse attempt: %d", status)
	}
}
