package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store"
)

// do sends a request with an optional Host and bearer token and returns
// the response with its body read.
func do(t *testing.T, method, url, host, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func getJSON(t *testing.T, url, host string) map[string]any {
	t.Helper()
	resp, body := do(t, "GET", url, host, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return m
}

// TestDevelopmentSignInRoutes checks the routes development mode mounts:
// metadata naming the real public URL (port 0 resolved), the development
// AuthKit, and the bearer check in front of /mcp and /sse.
func TestDevelopmentSignInRoutes(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	public := ts.s.cfg.Server.PublicURL
	if !strings.HasPrefix(public, "http://localhost:") || strings.HasSuffix(public, ":0") || strings.HasSuffix(public, ":8788") {
		t.Fatalf("public_url = %q, want http://localhost:<the real port>", public)
	}
	as := getJSON(t, ts.base+"/.well-known/oauth-authorization-server", "")
	if as["issuer"] != public || as["authorization_endpoint"] != public+"/authorize" || as["registration_endpoint"] != public+"/register" {
		t.Errorf("AS metadata = %v, want issuer %s and its endpoints", as, public)
	}
	for _, p := range []string{PathMCP, PathSSE} {
		pr := getJSON(t, ts.base+"/.well-known/oauth-protected-resource"+p, "")
		servers, _ := pr["authorization_servers"].([]any)
		if pr["resource"] != public+p || len(servers) != 1 || servers[0] != public {
			t.Errorf("PR metadata for %s = %v, want resource %s and AS %s", p, pr, public+p, public)
		}
		resp, body := do(t, "POST", ts.base+p, "", "")
		want := `resource_metadata="` + public + `/.well-known/oauth-protected-resource` + p + `"`
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
			t.Errorf("POST %s without a token = %d %q, want 401 naming %s", p, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
		}
		if strings.Contains(body, "not available") {
			t.Errorf("POST %s without a token reached the handler: %s", p, body)
		}
		resp, _ = do(t, "POST", ts.base+p, "", "made-up-token")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("POST %s with a made-up token = %d %q, want 401 invalid_token", p, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, body := do(t, "GET", ts.base+"/_dev/authkit/sso/jwks/client_toolgate_dev", "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"keys"`) {
		t.Errorf("development AuthKit JWKS = %d %s, want 200 with keys", resp.StatusCode, body)
	}
	if ts.s.auth.dev == nil {
		t.Error("development mode without a development AuthKit")
	}
}

// TestProductionMode: with WorkOS credentials the development AuthKit is
// not mounted at all, and the metadata names the https public URL.
func TestProductionMode(t *testing.T) {
	ts := startServer(t, productionConfig(t), nil)
	const host = "mcp.example.com"
	for _, p := range []string{"/_dev/authkit/user_management/authorize", "/_dev/authkit/sso/jwks/client_toolgate_dev", "/_dev/authkit/"} {
		if resp, _ := do(t, "GET", ts.base+p, host, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s in production = %d, want 404", p, resp.StatusCode)
		}
	}
	if ts.s.auth.dev != nil {
		t.Error("production mode started the development AuthKit")
	}
	as := getJSON(t, ts.base+"/.well-known/oauth-authorization-server", host)
	if as["issuer"] != "https://mcp.example.com" {
		t.Errorf("issuer = %v, want https://mcp.example.com", as["issuer"])
	}
	resp, _ := do(t, "POST", ts.base+PathMCP, host, "")
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("challenge = %q", resp.Header.Get("WWW-Authenticate"))
	}
}

// TestResourceServerMode: auth.mode = "authkit" names the AuthKit domain
// as the authorization server and mounts none of our OAuth endpoints.
func TestResourceServerMode(t *testing.T) {
	cfg := productionConfig(t)
	cfg.Auth.Mode = "authkit"
	cfg.Auth.AuthKitDomain = "https://example.authkit.app"
	ts := startServer(t, cfg, nil)
	const host = "mcp.example.com"
	pr := getJSON(t, ts.base+"/.well-known/oauth-protected-resource/mcp", host)
	servers, _ := pr["authorization_servers"].([]any)
	if pr["resource"] != "https://mcp.example.com/mcp" || len(servers) != 1 || servers[0] != "https://example.authkit.app" {
		t.Errorf("PR metadata = %v, want resource https://mcp.example.com/mcp, AS https://example.authkit.app", pr)
	}
	resp, _ := do(t, "GET", ts.base+"/.well-known/oauth-authorization-server", host, "")
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "https://example.authkit.app/.well-known/oauth-authorization-server" {
		t.Errorf("AS metadata = %d → %q, want 307 to AuthKit's", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/register", "/authorize", "/token", "/_dev/authkit/"} {
		if resp, _ := do(t, "GET", ts.base+p, host, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s in resource-server mode = %d, want 404", p, resp.StatusCode)
		}
	}
	resp, _ = do(t, "POST", ts.base+PathMCP, host, "not.a.jwt")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /mcp with a bad JWT = %d, want 401", resp.StatusCode)
	}
}

// TestMCPHandlerBehindGuard: SetMCPHandler replaces the placeholder, and
// only requests that passed the bearer check reach it.
func TestMCPHandlerBehindGuard(t *testing.T) {
	reached := make(chan string, 4)
	ts := startServer(t, testConfig(t), func(s *Server) {
		s.SetMCPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached <- "mcp"
		}), nil)
	})
	if resp, _ := do(t, "POST", ts.base+PathMCP, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /mcp without a token = %d, want 401", resp.StatusCode)
	}
	select {
	case r := <-reached:
		t.Errorf("an unauthenticated request reached the %s handler", r)
	default:
	}
	// The placeholder's answer, reached only with a valid token, is
	// checked end to end in cmd/toolgate; here its shape.
	rec := &recorder{header: http.Header{}}
	unavailableMCP(rec, nil)
	if rec.code != http.StatusServiceUnavailable || !strings.Contains(rec.body.String(), "not available") || rec.header.Get("Content-Type") != "application/json" {
		t.Errorf("placeholder = %d %q %q", rec.code, rec.header.Get("Content-Type"), rec.body.String())
	}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestAdminEndpoint: the operator endpoint listens on its own loopback
// port with the token from the data directory, and not on the public
// listener.
func TestAdminEndpoint(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.AdminListen = "127.0.0.1:0"
	st, err := openBadger(t.Context(), cfg.Store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(t.Context(), ForListener(cfg, ln.Addr()), testLogger(t), func(context.Context, config.StoreConfig, *slog.Logger) (store.Store, error) {
		return st, nil
	}, testAuthOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	tokBytes, err := os.ReadFile(filepath.Join(cfg.Store.Dir, admin.TokenFile))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	fi, err := os.Stat(filepath.Join(cfg.Store.Dir, admin.TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	base := "http://" + s.AdminAddr()
	good := &admin.Client{BaseURL: base, Token: strings.TrimSpace(string(tokBytes))}
	gs, err := good.ListGrants(t.Context(), "")
	if err != nil || len(gs) != 0 {
		t.Errorf("ListGrants = %v, %v; want none", gs, err)
	}
	bad := &admin.Client{BaseURL: base, Token: strings.Repeat("x", 43)}
	if _, err := bad.ListGrants(t.Context(), ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("ListGrants with a wrong token: %v, want a 401", err)
	}
	if resp, _ := do(t, "GET", "http://"+ln.Addr().String()+"/v1/grants", "", good.Token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin API on the public listener = %d, want 404", resp.StatusCode)
	}
	// Serve's shutdown closes the admin listener too.
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	done <- nil // for the cleanup
	if _, err := good.ListGrants(context.Background(), ""); err == nil {
		t.Error("admin endpoint still answers after shutdown")
	}
}

// TestSignInConfigErrors: configurations sign-in cannot run with stop
// New with one clear error.
func TestSignInConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"dev listen not loopback", func(c *config.Config) { c.Server.Listen = "0.0.0.0:8788" }, "must be a loopback address"},
		{"dev public url not loopback", func(c *config.Config) { c.Server.PublicURL = "http://mcp.example.com" }, "loopback"},
		{"dev public url https", func(c *config.Config) { c.Server.PublicURL = "https://localhost:8788" }, "http:// loopback URL"},
		{"admin not loopback", func(c *config.Config) { c.Server.AdminListen = "0.0.0.0:8789" }, "server.admin_listen"},
		{"authkit mode in dev", func(c *config.Config) { c.Auth.Mode = "authkit" }, "auth.mode"},
		{"authkit mode without domain", func(c *config.Config) {
			*c = productionConfigFrom(*c)
			c.Auth.Mode = "authkit"
		}, "auth.authkit_domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Server.Listen = "127.0.0.1:8788" // never listened on: New fails first
			tt.mutate(&cfg)
			st := &fakeStore{}
			_, err := newServer(t.Context(), cfg, slog.New(slog.DiscardHandler), func(context.Context, config.StoreConfig, *slog.Logger) (store.Store, error) {
				return st, nil
			}, testAuthOptions(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("newServer: %v, want an error naming %q", err, tt.want)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error spans lines: %q", err)
			}
			var ce *config.Error
			fromSetup := strings.HasPrefix(tt.name, "dev public url")
			if !fromSetup && !errors.As(err, &ce) {
				t.Errorf("error %v is not a *config.Error", err)
			}
			if fromSetup && !st.closed.Load() {
				t.Error("the store was not closed after a failed start")
			}
		})
	}
}

func TestForListener(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	tests := []struct {
		listen, public string
		wantPublic     string
	}{
		{"127.0.0.1:0", "http://localhost:8788", "http://localhost:41234"},
		{"127.0.0.1:0", "http://127.0.0.1:9", "http://127.0.0.1:41234"},
		{"127.0.0.1:0", "https://mcp.example.com", "https://mcp.example.com"},
		{"127.0.0.1:8788", "http://localhost:9999", "http://localhost:9999"},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.Server.Listen, cfg.Server.PublicURL = tt.listen, tt.public
		got := ForListener(cfg, addr)
		if got.Server.PublicURL != tt.wantPublic || got.Server.Listen != "127.0.0.1:41234" {
			t.Errorf("ForListener(%s, %s) = %s, %s; want %s, 127.0.0.1:41234", tt.listen, tt.public, got.Server.Listen, got.Server.PublicURL, tt.wantPublic)
		}
	}
}
