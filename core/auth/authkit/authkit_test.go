package authkit_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// signingKey returns one RSA key per test binary; generating keys is slow.
func signingKey(t *testing.T) *rsa.PrivateKey {
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

// env is a development AuthKit mounted as in production (under
// devauthkit.MountPath, behind StripPrefix) and an Upstream pointed at it.
type env struct {
	dev         *devauthkit.Server
	up          *authkit.Upstream
	redirectURI string
	apiBase     string
}

func newEnv(t *testing.T, users []devauthkit.User) *env {
	t.Helper()
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "callback reached")
	}))
	t.Cleanup(callback.Close)

	var dev *devauthkit.Server
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.StripPrefix(devauthkit.MountPath, dev).ServeHTTP(w, r)
	}))
	base := "http://" + ts.Listener.Addr().String() + devauthkit.MountPath
	redirectURI := callback.URL + "/callback"
	var err error
	dev, err = devauthkit.New(devauthkit.Config{
		ListenAddr:   ts.Listener.Addr().String(),
		BaseURL:      base,
		RedirectURIs: []string{redirectURI},
		Users:        users,
		Key:          signingKey(t),
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("devauthkit.New: %v", err)
	}
	ts.Start()
	t.Cleanup(ts.Close)

	up, err := authkit.New(authkit.Config{
		ClientID:   dev.ClientID(),
		APIKey:     dev.APIKey(),
		APIBaseURL: dev.BaseURL(),
		HTTPClient: ts.Client(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("authkit.New: %v", err)
	}
	return &env{dev: dev, up: up, redirectURI: redirectURI, apiBase: base}
}

// pkcePair returns a fresh code verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	buttonRE = regexp.MustCompile(`<button type="submit" name="email" value="([^"]+)">([^<]+)<`)
)

// loginPage is the parsed dev login page.
type loginPage struct {
	url     *url.URL
	header  http.Header
	hidden  url.Values
	buttons [][2]string // value, label
}

func getLoginPage(t *testing.T, c *http.Client, authURL string) loginPage {
	t.Helper()
	res, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET authorize: status %d, body %s", res.StatusCode, body)
	}
	p := loginPage{url: res.Request.URL, header: res.Header, hidden: url.Values{}}
	for _, m := range hiddenRE.FindAllStringSubmatch(string(body), -1) {
		p.hidden.Set(m[1], m[2])
	}
	for _, m := range buttonRE.FindAllStringSubmatch(string(body), -1) {
		p.buttons = append(p.buttons, [2]string{m[1], m[2]})
	}
	return p
}

func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// signIn drives the browser leg: authorization URL → login page → the
// user's button → redirect to the callback. It returns the code, state and
// verifier.
func (e *env) signIn(t *testing.T, email string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	state := rand.Text()
	authURL, err := e.up.AuthorizationURL(t.Context(), authkit.AuthorizeParams{
		RedirectURI: e.redirectURI, State: state, CodeChallenge: challenge,
	})
	if err != nil {
		t.Fatalf("AuthorizationURL: %v", err)
	}
	c := browser(t)
	page := getLoginPage(t, c, authURL)
	form := url.Values{"login_id": {page.hidden.Get("login_id")}, "csrf_token": {page.hidden.Get("csrf_token")}}
	found := false
	for _, b := range page.buttons {
		if b[0] == email {
			form.Set("email", b[0])
			found = true
		}
	}
	if !found {
		t.Fatalf("no button for %s on login page (buttons %v)", email, page.buttons)
	}
	action := page.url.ResolveReference(&url.URL{Path: "authorize"})
	res, err := c.PostForm(action.String(), form)
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	res.Body.Close()
	final := res.Request.URL
	if res.StatusCode != http.StatusOK || final.Path != "/callback" {
		t.Fatalf("login ended at %s with status %d, want the callback", final, res.StatusCode)
	}
	if got := final.Query().Get("state"); got != state {
		t.Fatalf("callback state = %q, want %q", got, state)
	}
	code = final.Query().Get("code")
	if code == "" {
		t.Fatal("callback has no code")
	}
	return code, verifier
}

func TestSignInRefreshRevoke(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	code, verifier := e.signIn(t, "alice@example.com")

	id, err := e.up.ExchangeCode(ctx, code, verifier)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if id.Email != "alice@example.com" || id.FirstName != "Alice" || id.Role != "admin" {
		t.Errorf("identity = %+v, want alice, role admin", id)
	}
	if !slices.Equal(id.Permissions, []string{"image_generation"}) {
		t.Errorf("permissions = %q, want [image_generation]", id.Permissions)
	}
	if !strings.HasPrefix(id.UserID, "user_") || !strings.HasPrefix(id.OrganizationID, "org_") || !strings.HasPrefix(id.SessionID, "session_") {
		t.Errorf("ids = user %q org %q session %q, want WorkOS-style prefixes", id.UserID, id.OrganizationID, id.SessionID)
	}
	if id.RefreshToken == "" {
		t.Error("no refresh token")
	}
	if d := time.Until(id.AccessTokenExpiry); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("access token expires in %v, want about 5m", d)
	}

	// The code is single-use.
	if _, err := e.up.ExchangeCode(ctx, code, verifier); !errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
		t.Errorf("second ExchangeCode error = %v, want ErrUpstreamGrantInvalid", err)
	}

	r1, err := e.up.Refresh(ctx, id.RefreshToken, id.OrganizationID)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if r1.RefreshToken == id.RefreshToken || r1.RefreshToken == "" {
		t.Errorf("refresh token not rotated")
	}
	if r1.UserID != id.UserID || r1.SessionID != id.SessionID || r1.OrganizationID != id.OrganizationID {
		t.Errorf("refreshed identity %+v does not match sign-in %+v", r1, id)
	}

	// Reusing the old refresh token fails with invalid_grant.
	_, err = e.up.Refresh(ctx, id.RefreshToken, id.OrganizationID)
	if !errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
		t.Fatalf("reused refresh token error = %v, want ErrUpstreamGrantInvalid", err)
	}
	var ue *authkit.UpstreamError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusBadRequest || ue.Code != "invalid_grant" {
		t.Errorf("reused refresh token error = %#v, want UpstreamError 400 invalid_grant", ue)
	}
	if strings.Contains(err.Error(), id.RefreshToken) {
		t.Error("error message contains the refresh token")
	}

	// Permission changes show up on the next refresh.
	if err := e.dev.SetPermissions("alice@example.com", []string{"image_generation", "reports"}); err != nil {
		t.Fatal(err)
	}
	r2, err := e.up.Refresh(ctx, r1.RefreshToken, "")
	if err != nil {
		t.Fatalf("Refresh after SetPermissions: %v", err)
	}
	if !slices.Equal(r2.Permissions, []string{"image_generation", "reports"}) {
		t.Errorf("permissions after SetPermissions = %q", r2.Permissions)
	}
	if err := e.dev.SetPermissions("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	r3, err := e.up.Refresh(ctx, r2.RefreshToken, "")
	if err != nil {
		t.Fatalf("Refresh after clearing permissions: %v", err)
	}
	if r3.Permissions == nil || len(r3.Permissions) != 0 {
		t.Errorf("permissions after clearing = %#v, want empty", r3.Permissions)
	}

	// Revoking the session ends its refresh tokens.
	if err := e.up.RevokeSession(ctx, id.SessionID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if _, err := e.up.Refresh(ctx, r3.RefreshToken, ""); !errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
		t.Errorf("refresh after revoke error = %v, want ErrUpstreamGrantInvalid", err)
	}
	// Revoking again is not an error: the session is already gone.
	if err := e.up.RevokeSession(ctx, id.SessionID); err != nil {
		t.Errorf("second RevokeSession: %v", err)
	}
}

func TestRefreshIntoAnotherOrganization(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.signIn(t, "alice@example.com")
	id, err := e.up.ExchangeCode(t.Context(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.up.Refresh(t.Context(), id.RefreshToken, "org_other"); !errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
		t.Fatalf("refresh into an organization alice is not in: error %v, want ErrUpstreamGrantInvalid", err)
	}
}

// failingJWKS fails every JWKS request and passes the rest through.
type failingJWKS struct{ next http.RoundTripper }

func (f failingJWKS) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/sso/jwks/") {
		return nil, errors.New("jwks unreachable")
	}
	return f.next.RoundTrip(r)
}

func TestRefreshKeepsRotatedTokenWhenVerificationFails(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.signIn(t, "alice@example.com")
	id, err := e.up.ExchangeCode(t.Context(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh Upstream (empty key cache) that cannot reach the JWKS.
	cut, err := authkit.New(authkit.Config{
		ClientID: e.dev.ClientID(), APIKey: e.dev.APIKey(), APIBaseURL: e.apiBase,
		HTTPClient: &http.Client{Transport: failingJWKS{next: http.DefaultTransport}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := cut.Refresh(t.Context(), id.RefreshToken, id.OrganizationID)
	if !errors.Is(err, authkit.ErrUpstreamUnavailable) {
		t.Fatalf("error = %v, want ErrUpstreamUnavailable", err)
	}
	if rotated.RefreshToken == "" || rotated.RefreshToken == id.RefreshToken || rotated.UserID != "" {
		t.Fatalf("identity alongside the error = %+v, want only the rotated refresh token", rotated)
	}
	// The rotated token is the live one.
	if _, err := e.up.Refresh(t.Context(), rotated.RefreshToken, id.OrganizationID); err != nil {
		t.Errorf("refresh with the rotated token: %v", err)
	}
}

func TestBobHasNoPermissions(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.signIn(t, "bob@example.com")
	id, err := e.up.ExchangeCode(t.Context(), code, verifier)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if id.Email != "bob@example.com" || id.Role != "member" {
		t.Errorf("identity = %+v, want bob, member", id)
	}
	if id.Permissions == nil || len(id.Permissions) != 0 {
		t.Errorf("permissions = %#v, want empty", id.Permissions)
	}
	other := newEnv(t, nil) // a separate server derives the same stable ids
	code, verifier = other.signIn(t, "bob@example.com")
	id2, err := other.up.ExchangeCode(t.Context(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if id2.UserID != id.UserID || id2.OrganizationID != id.OrganizationID {
		t.Errorf("ids differ across servers: %q/%q vs %q/%q", id.UserID, id.OrganizationID, id2.UserID, id2.OrganizationID)
	}
}

func TestPKCEMismatch(t *testing.T) {
	e := newEnv(t, nil)
	code, _ := e.signIn(t, "alice@example.com")
	other, _ := pkcePair()
	_, err := e.up.ExchangeCode(t.Context(), code, other)
	if !errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
		t.Fatalf("error = %v, want ErrUpstreamGrantInvalid", err)
	}
	var ue *authkit.UpstreamError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusBadRequest || ue.Code != "invalid_grant" || ue.RequestID == "" {
		t.Errorf("error = %#v, want UpstreamError 400 invalid_grant with a request id", ue)
	}
}

func TestWrongClientSecret(t *testing.T) {
	e := newEnv(t, nil)
	code, verifier := e.signIn(t, "alice@example.com")
	bad, err := authkit.New(authkit.Config{
		ClientID:   e.dev.ClientID(),
		APIKey:     "sk_wrong",
		APIBaseURL: e.apiBase,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ExchangeCode(t.Context(), code, verifier)
	var ue *authkit.UpstreamError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusUnauthorized || ue.Code != "invalid_client" {
		t.Fatalf("error = %v, want UpstreamError 401 invalid_client", err)
	}
	if errors.Is(err, authkit.ErrUpstreamGrantInvalid) || errors.Is(err, authkit.ErrUpstreamUnavailable) {
		t.Errorf("invalid_client must not wrap a grant or availability sentinel: %v", err)
	}
	if strings.Contains(err.Error(), "sk_wrong") {
		t.Error("error message contains the api key")
	}
	if err := bad.RevokeSession(t.Context(), "session_x"); err == nil {
		t.Error("RevokeSession with a wrong api key succeeded")
	}
}

func TestLoginPage(t *testing.T) {
	users := []devauthkit.User{
		{Email: "carol@example.com", Role: "admin", Organization: "Acme"},
		{Email: "dave@example.com"},
		{Email: "erin@example.org", Permissions: []string{"x"}},
	}
	e := newEnv(t, users)
	_, challenge := pkcePair()
	authURL, err := e.up.AuthorizationURL(t.Context(), authkit.AuthorizeParams{
		RedirectURI: e.redirectURI, State: "s1", CodeChallenge: challenge,
	})
	if err != nil {
		t.Fatal(err)
	}
	page := getLoginPage(t, browser(t), authURL)
	origin := strings.TrimSuffix(e.redirectURI, "/callback")
	wantCSP := "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' " + origin + "; frame-ancestors 'none'"
	if got := page.header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("CSP = %q, want %q", got, wantCSP)
	}
	if got := page.header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", got)
	}
	if len(page.buttons) != len(users) {
		t.Fatalf("%d buttons, want %d", len(page.buttons), len(users))
	}
	for i, u := range users {
		if page.buttons[i][0] != u.Email || strings.TrimSpace(page.buttons[i][1]) != u.Email {
			t.Errorf("button %d = %q, want %s", i, page.buttons[i], u.Email)
		}
	}
	if page.hidden.Get("csrf_token") == "" || page.hidden.Get("login_id") == "" {
		t.Errorf("hidden fields = %v, want login_id and csrf_token", page.hidden)
	}
}

func TestRefreshUnavailable(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"message":"down","code":"service_unavailable"}`)
	}))
	defer down.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for name, base := range map[string]string{"503": down.URL, "connection refused": closedURL} {
		t.Run(name, func(t *testing.T) {
			up, err := authkit.New(authkit.Config{ClientID: "client_x", APIKey: "sk_x", APIBaseURL: base, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = up.Refresh(context.Background(), "rt_secret_value", "")
			if !errors.Is(err, authkit.ErrUpstreamUnavailable) || errors.Is(err, authkit.ErrUpstreamGrantInvalid) {
				t.Errorf("error = %v, want only ErrUpstreamUnavailable", err)
			}
			if strings.Contains(err.Error(), "rt_secret_value") || strings.Contains(err.Error(), "sk_x") {
				t.Error("error message contains a secret")
			}
		})
	}
}

func TestAuthorizationURL(t *testing.T) {
	up, err := authkit.New(authkit.Config{ClientID: "client_123", APIKey: "sk_x"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := up.AuthorizationURL(t.Context(), authkit.AuthorizeParams{
		RedirectURI: "https://tg.example/callback", State: "st", CodeChallenge: "ch",
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"client_id": {"client_123"}, "redirect_uri": {"https://tg.example/callback"}, "response_type": {"code"},
		"provider": {"authkit"}, "state": {"st"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"},
	}
	if u.Scheme+"://"+u.Host+u.Path != "https://api.workos.com/user_management/authorize" {
		t.Errorf("endpoint = %s", got)
	}
	for k, v := range want {
		if !slices.Equal(u.Query()[k], v) {
			t.Errorf("%s = %q, want %q", k, u.Query()[k], v)
		}
	}
	for _, p := range []authkit.AuthorizeParams{
		{State: "s", CodeChallenge: "c"},
		{RedirectURI: "https://x/cb", CodeChallenge: "c"},
		{RedirectURI: "https://x/cb", State: "s"},
	} {
		if _, err := up.AuthorizationURL(t.Context(), p); err == nil {
			t.Errorf("AuthorizationURL(%+v) succeeded, want an error", p)
		}
	}
}

func TestNewValidation(t *testing.T) {
	for name, cfg := range map[string]authkit.Config{
		"no client id":   {APIKey: "sk"},
		"no api key":     {ClientID: "c"},
		"bad base url":   {ClientID: "c", APIKey: "sk", APIBaseURL: "api.workos.com"},
		"base url query": {ClientID: "c", APIKey: "sk", APIBaseURL: "https://x?y=1"},
		"bad jwks url":   {ClientID: "c", APIKey: "sk", JWKSURL: "ftp://x/jwks"},
	} {
		if _, err := authkit.New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}
