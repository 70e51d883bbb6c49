package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/toolgate/toolgate/core/auth"
	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/server"
)

// liveServer is a composed toolgate server in development mode, serving
// in this process on loopback ports.
type liveServer struct {
	s       *server.Server
	public  string // public_url (the real port)
	admin   string // admin listen address
	dataDir string
}

func startLiveServer(t *testing.T, setup ...func(*config.Config)) *liveServer {
	t.Helper()
	t.Chdir(t.TempDir()) // no toolgate.toml; plugins paths resolve here
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := config.Default()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = "127.0.0.1:0"
	cfg.Store.Dir = dataDir
	cfg.Store.SyncWrites = false
	cfg.Plugins.Watch = false
	for _, f := range setup {
		f(&cfg)
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		t.Fatal(err)
	}
	cfg = server.ForListener(cfg, ln.Addr())
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(t.Context(), cfg, logger)
	if err != nil {
		ln.Close()
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
	return &liveServer{s: s, public: cfg.Server.PublicURL, admin: s.AdminAddr(), dataDir: dataDir}
}

// cli runs a toolgate command against ls and returns its exit code and
// output.
func (ls *liveServer) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	args = append(args, "-data-dir", ls.dataDir, "-admin-listen", ls.admin)
	var out, errOut strings.Builder
	code := run(args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// signIn runs go-sdk's OAuth client (AuthorizationCodeHandler) against the
// server: discovery from the 401 of /mcp, dynamic registration, the
// consent page (Approve) and the development AuthKit's login page (the
// user's button), the code exchange. It returns the access and refresh
// tokens.
func signIn(t *testing.T, public, user string) (access, refresh string) {
	t.Helper()
	return signInAt(t, public, "/mcp", user)
}

// signInAt is signIn with discovery starting from the protected resource
// at path (/mcp or /sse): the token is issued for that resource.
func signInAt(t *testing.T, public, path, user string) (access, refresh string) {
	t.Helper()
	access, refresh, _ = signInFlow(t, public, path, user, nil)
	return access, refresh
}

// signInFlow is the whole sign-in behind signIn and signInAt. It also
// returns the registered client's ID, and runs beforeCallback (when not
// nil) just before the browser comes back to public's /callback from
// AuthKit, so a test can act mid-flow (kill a replica, say).
func signInFlow(t *testing.T, public, path, user string, beforeCallback func()) (access, refresh, clientID string) {
	t.Helper()
	const redirect = "http://127.0.0.1:5555/callback"
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	walk := func(target string) (*url.URL, error) {
		req, _ := http.NewRequest("GET", target, nil)
		for range 20 {
			if beforeCallback != nil && req.URL.Path == "/callback" && strings.HasPrefix(req.URL.String(), public) {
				beforeCallback()
			}
			resp, err := browser.Do(req)
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 300 && resp.StatusCode < 400:
				loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
				if err != nil {
					return nil, err
				}
				if strings.HasPrefix(loc.String(), redirect) {
					return loc, nil
				}
				req, _ = http.NewRequest("GET", loc.String(), nil)
			case resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "text/html"):
				form := url.Values{}
				for _, m := range hiddenInput.FindAllStringSubmatch(string(body), -1) {
					form.Set(m[1], html.UnescapeString(m[2]))
				}
				switch {
				case form.Has("login_id"): // the development AuthKit's login page
					form.Set("email", user)
				case form.Has("request"): // our consent page
					form.Set("action", "approve")
				default:
					return nil, fmt.Errorf("unexpected page %s: %s", resp.Request.URL, body)
				}
				u, _ := resp.Request.URL.Parse("authorize")
				req, _ = http.NewRequest("POST", u.String(), strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			default:
				return nil, fmt.Errorf("%s answered %d: %s", resp.Request.URL, resp.StatusCode, body)
			}
		}
		return nil, fmt.Errorf("too many steps")
	}
	h, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &sdkauth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs:            []string{redirect},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ClientName:              "e2e client",
		}},
		AuthorizationCodeFetcher: func(_ context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
			if u, err := url.Parse(args.URL); err == nil {
				clientID = u.Query().Get("client_id")
			}
			loc, err := walk(args.URL)
			if err != nil {
				return nil, err
			}
			q := loc.Query()
			return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", public+path, strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="`+public+`/.well-known/oauth-protected-resource`+path+`"`) {
		t.Fatalf("%s without a token = %d %q, want 401 naming the resource metadata", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if err := h.Authorize(t.Context(), req, resp); err != nil {
		t.Fatalf("sign-in of %s: %v", user, err)
	}
	src, err := h.TokenSource(t.Context())
	if err != nil || src == nil {
		t.Fatalf("TokenSource: %v", err)
	}
	tok, err := src.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok.RefreshToken == "" || clientID == "" {
		t.Fatalf("sign-in of %s: refresh token %t, client %q", user, tok.RefreshToken != "", clientID)
	}
	return tok.AccessToken, tok.RefreshToken, clientID
}

// refresh redeems a refresh token of a public client at /token and
// returns the new access token.
func refresh(t *testing.T, public, clientID, rt string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
	resp, err := http.PostForm(public+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.AccessToken
}

// callMCP posts to /mcp with token and returns the status and body.
func callMCP(t *testing.T, public, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", public+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSignInAndOperatorCommands runs the whole development-mode flow
// through the composed server and then the operator commands against it.
func TestSignInAndOperatorCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	ls := startLiveServer(t)
	alice, _ := signIn(t, ls.public, "alice@example.com")
	bob, bobRefresh := signIn(t, ls.public, "bob@example.com")

	// Past the bearer check, the MCP endpoint answers (a lone ping is
	// served statelessly).
	if status, body := callMCP(t, ls.public, alice); status != http.StatusOK || !strings.Contains(body, `"result":{}`) {
		t.Fatalf("/mcp ping with alice's token = %d %s, want a JSON-RPC result", status, body)
	}
	// Behind the check, a handler sees who signed in.
	ls.s.SetMCPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.CallerFromContext(r.Context())
		if !ok {
			http.Error(w, "no caller", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(c)
	}), nil)
	for _, tt := range []struct {
		token, email, role string
		perms              []string
	}{
		{alice, "alice@example.com", "admin", []string{"image_generation"}},
		{bob, "bob@example.com", "member", []string{}},
	} {
		status, body := callMCP(t, ls.public, tt.token)
		var c auth.Caller
		if status != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("/mcp as %s = %d %s", tt.email, status, body)
		}
		if c.Email != tt.email || c.Role != tt.role || !slices.Equal(c.Permissions, tt.perms) || c.Resource != ls.public+"/mcp" || c.OrganizationID == "" {
			t.Errorf("caller = %+v, want %s, %s, %v, resource %s/mcp", c, tt.email, tt.role, tt.perms, ls.public)
		}
	}

	// A refresh goes upstream (the development AuthKit, called by the
	// server on its own listener) and rotates bob's tokens.
	code, out, errOut := ls.cli(t, "grants", "list", "-user", "bob@example.com", "-json")
	var bobGrants []admin.Grant
	if code != exitOK || json.Unmarshal([]byte(out), &bobGrants) != nil || len(bobGrants) != 1 {
		t.Fatalf("grants list -user bob -json = %d\n%s%s", code, out, errOut)
	}
	status, bob2 := refresh(t, ls.public, bobGrants[0].ClientID, bobRefresh)
	if status != http.StatusOK || bob2 == "" || bob2 == bob {
		t.Fatalf("refresh = %d, new access token %q", status, bob2)
	}
	if status, body := callMCP(t, ls.public, bob2); status != http.StatusOK || !strings.Contains(body, "bob@example.com") {
		t.Errorf("/mcp with bob's refreshed token = %d %s", status, body)
	}
	if status, _ := refresh(t, ls.public, bobGrants[0].ClientID, bobRefresh); status != http.StatusBadRequest {
		t.Errorf("reusing a rotated refresh token = %d, want 400", status)
	}
	// Reuse of a rotated refresh token ends the grant: bob signs in again.
	if status, _ := callMCP(t, ls.public, bob2); status != http.StatusUnauthorized {
		t.Errorf("/mcp after refresh-token reuse = %d, want 401 (grant revoked)", status)
	}
	bob, _ = signIn(t, ls.public, "bob@example.com")

	code, out, errOut = ls.cli(t, "grants", "list")
	if code != exitOK || !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "bob@example.com") || !strings.HasPrefix(out, "ID ") {
		t.Fatalf("grants list = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = ls.cli(t, "grants", "list", "-user", "alice@example.com", "-json")
	var gs []admin.Grant
	if code != exitOK || json.Unmarshal([]byte(out), &gs) != nil || len(gs) != 1 || gs[0].Email != "alice@example.com" || gs[0].Role != "admin" {
		t.Fatalf("grants list -user alice -json = %d\n%s%s", code, out, errOut)
	}

	// Revoking alice's grant refuses her token on the next request; bob's
	// keeps working.
	code, out, errOut = ls.cli(t, "grants", "revoke", gs[0].ID)
	if code != exitOK || !strings.Contains(out, "revoked grant "+gs[0].ID) {
		t.Fatalf("grants revoke = %d %s%s", code, out, errOut)
	}
	if status, _ := callMCP(t, ls.public, alice); status != http.StatusUnauthorized {
		t.Errorf("/mcp with a revoked grant's token = %d, want 401", status)
	}
	if status, _ := callMCP(t, ls.public, bob); status == http.StatusUnauthorized {
		t.Errorf("/mcp with bob's token after revoking alice = 401")
	}
	code, _, errOut = ls.cli(t, "grants", "revoke", gs[0].ID)
	if code != exitError || !strings.Contains(errOut, "no such grant") {
		t.Errorf("revoking it again = %d %q, want 1 and no such grant", code, errOut)
	}

	code, out, errOut = ls.cli(t, "grants", "revoke", "-user", "bob@example.com")
	if code != exitOK || !strings.Contains(out, "revoked 1 grant(s) of bob@example.com") {
		t.Fatalf("grants revoke -user bob = %d %s%s", code, out, errOut)
	}
	if status, _ := callMCP(t, ls.public, bob); status != http.StatusUnauthorized {
		t.Errorf("/mcp with bob's revoked token = %d, want 401", status)
	}
	if code, out, _ = ls.cli(t, "grants", "list"); code != exitOK || out != "no grants\n" {
		t.Errorf("grants list after revoking all = %d %q", code, out)
	}

	code, out, errOut = ls.cli(t, "clients", "list", "-json")
	var cs []admin.ClientInfo
	if code != exitOK || json.Unmarshal([]byte(out), &cs) != nil || len(cs) != 3 || cs[0].Name != "e2e client" {
		t.Fatalf("clients list -json = %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = ls.cli(t, "clients", "list"); code != exitOK || !strings.Contains(out, cs[0].ID) || !strings.Contains(out, "e2e client") {
		t.Errorf("clients list = %d\n%s", code, out)
	}
	if code, out, errOut = ls.cli(t, "clients", "delete", cs[0].ID); code != exitOK || !strings.Contains(out, "deleted client") {
		t.Errorf("clients delete = %d %s%s", code, out, errOut)
	}
	if code, out, _ = ls.cli(t, "clients", "list", "-json"); code != exitOK || strings.Contains(out, cs[0].ID) {
		t.Errorf("the deleted client is still listed: %s", out)
	}
}

// TestOperatorCommandErrors: usage mistakes and an unreachable server get
// one clear line each, on stderr, from every command that talks to the
// admin endpoint (grants, clients, audit tail, replicas).
func TestOperatorCommandErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	dir := t.TempDir()
	if _, err := admin.LoadOrCreateToken(dir); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"grants", "list", "-data-dir", dir, "-admin-listen", dead}, exitError, "is toolgate serve running? could not reach the admin endpoint at " + dead},
		{[]string{"clients", "list", "-data-dir", dir, "-admin-listen", dead}, exitError, "is toolgate serve running?"},
		{[]string{"grants", "list", "-data-dir", t.TempDir(), "-admin-listen", dead}, exitError, "no admin token at"},
		{[]string{"grants", "list", "-data-dir", dir, "-admin-listen", ""}, exitError, "the admin endpoint is disabled"},
		{[]string{"grants", "revoke"}, exitUsage, "name a grant id, or -user EMAIL"},
		{[]string{"grants", "revoke", "abc", "-user", "a@b.c"}, exitUsage, "not both"},
		{[]string{"grants", "revoke", "a", "b"}, exitUsage, `unexpected argument "b"`},
		{[]string{"grants", "list", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"clients", "delete"}, exitUsage, "name the client id"},
		{[]string{"clients", "list", "-user", "a@b.c"}, exitUsage, "flag provided but not defined: -user"},
		{[]string{"grants", "nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"grants"}, exitUsage, "Usage: toolgate grants"},
		{[]string{"audit", "tail", "-data-dir", dir, "-admin-listen", dead}, exitError, "toolgate audit tail: is toolgate serve running? could not reach the admin endpoint at " + dead},
		{[]string{"audit", "tail", "-f", "-data-dir", dir, "-admin-listen", dead}, exitError, "is toolgate serve running?"},
		{[]string{"audit", "tail", "-data-dir", t.TempDir(), "-admin-listen", dead}, exitError, "no admin token at"},
		{[]string{"audit", "tail", "-data-dir", dir, "-admin-listen", ""}, exitError, "the admin endpoint is disabled"},
		{[]string{"audit", "tail", "-n", "-1"}, exitUsage, "-n -1 is out of range"},
		{[]string{"audit", "tail", "-since", "soon"}, exitUsage, `-since "soon" is neither`},
		{[]string{"audit", "tail", "now"}, exitUsage, `unexpected argument "now"`},
		{[]string{"audit", "head"}, exitUsage, `toolgate audit: unknown command "head"`},
		{[]string{"audit"}, exitUsage, "Usage: toolgate audit tail"},
		{[]string{"replicas", "-data-dir", dir, "-admin-listen", dead}, exitError, "toolgate replicas: is toolgate serve running?"},
		{[]string{"replicas", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"replicas", "-user", "x"}, exitUsage, "flag provided but not defined: -user"},
		{[]string{"replicas", "-data-dir", t.TempDir(), "-admin-listen", dead}, exitError, "no admin token at"},
		{[]string{"replicas", "-admin-listen", ""}, exitError, "the admin endpoint is disabled"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, nil, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tt.wantCode, tt.want)
			}
			if out.String() != "" {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
	var help strings.Builder
	if code := run([]string{"audit", "tail", "-h"}, nil, &help, &help); code != exitOK || !strings.Contains(help.String(), "Examples:") || !strings.Contains(help.String(), "-since DURATION|TIME") {
		t.Errorf("audit tail -h = %d:\n%s", code, help.String())
	}
	for _, group := range []string{"grants", "clients", "replicas"} {
		var out, errOut strings.Builder
		if code := run([]string{group, "-h"}, nil, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "Usage: toolgate "+group) || !strings.Contains(out.String(), "admin.token") {
			t.Errorf("%s -h = %d %q", group, code, out.String())
		}
	}
}
