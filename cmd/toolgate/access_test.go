package main

// The access-control proof (issue 7): users × tools × rules through real
// HTTP and the go-sdk MCP client against the composed development server,
// and every way a token stops working, each observed on the very next
// request after the event.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/config"
)

// accessUser is a development AuthKit user of the proof.
type accessUser struct {
	email string
	role  string
	org   string // organization name; "" for none
	perms []string
}

// accessUsers cover every part of every rule: permissions held or not,
// roles in and out of the lists, two organizations and none.
var accessUsers = []accessUser{
	{"alice@example.com", "admin", "Acme", []string{"image_generation"}},
	{"bob@example.com", "member", "Acme", nil},
	{"carol@example.com", "member", "Acme", []string{"reports:read", "reports:write", "billing:read"}},
	{"dave@example.com", "owner", "Globex", []string{"reports:read"}},
	{"erin@example.com", "admin", "", []string{"billing:admin", "image_generation"}},
	{"frank@example.com", "viewer", "Globex", []string{"reports:write", "billing:admin"}},
}

// accessRule is what a tool requires, stated here on its own terms (the
// test never asks core/gate): every permission in all, at least one in
// any, a role in roles, an organization in orgs; an empty part asks
// nothing.
type accessRule struct {
	all, any, roles, orgs []string // orgs by name
}

// allows says whether u satisfies r.
func (r accessRule) allows(u accessUser) bool {
	for _, p := range r.all {
		if !slices.Contains(u.perms, p) {
			return false
		}
	}
	holdsAny := len(r.any) == 0
	for _, p := range r.any {
		holdsAny = holdsAny || slices.Contains(u.perms, p)
	}
	return holdsAny &&
		(len(r.roles) == 0 || slices.Contains(r.roles, u.role)) &&
		(len(r.orgs) == 0 || (u.org != "" && slices.Contains(r.orgs, u.org)))
}

// refusal is the message a denied call must carry, in the words core/gate
// documents: the first failing part in the order organization, role,
// permissions, any permissions, then what the caller has instead.
func (r accessRule) refusal(tool string, u accessUser) string {
	have := "none"
	if len(u.perms) > 0 {
		sorted := slices.Sorted(slices.Values(u.perms))
		have = strings.Join(sorted, ", ")
	}
	oneOf := func(single, plural string, values []string) string {
		if len(values) == 1 {
			return single + " " + values[0]
		}
		return "one of " + plural + " " + strings.Join(values, ", ")
	}
	switch {
	case len(r.orgs) > 0 && !slices.Contains(r.orgs, u.org):
		return tool + " is not available to your organization"
	case len(r.roles) > 0 && !slices.Contains(r.roles, u.role):
		return tool + " needs " + oneOf("role", "the roles", r.roles) + "; you have " + u.role
	}
	var missing []string
	for _, p := range r.all {
		if !slices.Contains(u.perms, p) {
			missing = append(missing, p)
		}
	}
	switch len(missing) {
	case 0:
		return tool + " needs " + oneOf("permission", "the permissions", r.any) + "; you have " + have
	case 1:
		return tool + " needs permission " + missing[0] + "; you have " + have
	default:
		return tool + " needs permissions " + strings.Join(missing, ", ") + "; you have " + have
	}
}

// accessTool is a tool of the proof, its rule, and the plugins.toml lines
// that give it that rule (empty when the manifest's rule stands).
type accessTool struct {
	name string
	rule accessRule
	toml string // {acme} and {globex} stand for the organizations' ids
}

var accessTools = []accessTool{
	// The reference plugins under the repository's plugins.toml.
	{"add", accessRule{}, ""},
	{"whoami", accessRule{}, ""},
	{"generateImage", accessRule{all: []string{"image_generation"}}, ""},
	// The gated test plugin.
	{"open", accessRule{}, ""},
	{"manifest_perm", accessRule{all: []string{"reports:read"}}, ""},
	{"legacy_perm", accessRule{}, `permissions = []`},
	{"manifest_plus", accessRule{all: []string{"reports:read"}, roles: []string{"owner"}}, `roles = ["owner"]`},
	{"perm_all", accessRule{all: []string{"reports:read", "reports:write"}}, `permissions = ["reports:read", "reports:write"]`},
	{"perm_any", accessRule{any: []string{"billing:read", "billing:admin"}}, `any_permissions = ["billing:read", "billing:admin"]`},
	{"role_only", accessRule{roles: []string{"admin", "owner"}}, `roles = ["admin", "owner"]`},
	{"org_only", accessRule{orgs: []string{"Globex"}}, `organizations = ["{globex}"]`},
	{"combo", accessRule{all: []string{"reports:read"}, any: []string{"billing:read", "reports:write"}, roles: []string{"member", "owner"}, orgs: []string{"Acme"}},
		"permissions = [\"reports:read\"]\nany_permissions = [\"billing:read\", \"reports:write\"]\nroles = [\"member\", \"owner\"]\norganizations = [\"{acme}\"]"},
}

// accessArgs are the arguments each tool is called with (none for the
// rest).
var accessArgs = map[string]map[string]any{
	"add":           {"a": 2, "b": 40},
	"generateImage": {"prompt": "a lighthouse at dusk", "steps": 4},
}

// gatedPlugin builds testdata/gated to wasm once per test binary.
var gatedPlugin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "toolgate-cmd-gated-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "gated.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./cmd/toolgate/testdata/gated")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{name: "gated", out: string(b), err: err}
	}
	return out, nil
})

// accessServer is a live development server with the reference plugins,
// the gated plugin and the operator rules of accessTools.
func accessServer(t *testing.T, users []accessUser, setup func(*config.Config)) *liveServer {
	t.Helper()
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	gated, err := gatedPlugin()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(filepath.Join(repoRoot, "plugins.toml"))
	if err != nil {
		t.Fatal(err)
	}
	pluginsFile := filepath.Join(t.TempDir(), "plugins.toml")
	// The organization rules need the development AuthKit's organization
	// ids, known once it runs: start without the gated plugin's rules,
	// then write them and reload, as an operator would.
	write := func(acme, globex string) {
		var b strings.Builder
		b.Write(base)
		fmt.Fprintf(&b, "\n[plugins.gated]\npath = %q\n", gated)
		if acme != "" {
			for _, tool := range accessTools {
				if tool.toml != "" {
					rules := strings.NewReplacer("{acme}", acme, "{globex}", globex).Replace(tool.toml)
					fmt.Fprintf(&b, "\n[plugins.gated.tools.%s]\n%s\n", tool.name, rules)
				}
			}
		}
		if err := os.WriteFile(pluginsFile, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("", "")
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dist
		cfg.Plugins.Config = pluginsFile
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
		cfg.Auth.RateLimit = 0 // many sign-ins from one address
		cfg.Auth.DevUsers = nil
		for _, u := range users {
			cfg.Auth.DevUsers = append(cfg.Auth.DevUsers, config.DevUser{Email: u.email, Role: u.role, Permissions: u.perms, Organization: u.org})
		}
		if setup != nil {
			setup(cfg)
		}
	})
	orgID := func(name string) string {
		for _, u := range users {
			if u.org == name {
				_, id, _ := ls.s.DevAuthKit().IDs(u.email)
				return id
			}
		}
		return "org_none_" + name
	}
	write(orgID("Acme"), orgID("Globex"))
	if err := ls.s.Reload(t.Context()); err != nil {
		t.Fatalf("reload with the operator rules: %v", err)
	}
	return ls
}

// connectMCP opens a go-sdk client session with a bearer token: over /mcp
// at the client's newest protocol revision (stateless), over /mcp at
// 2025-11-25 (a stateful session), or over /sse.
func connectMCP(t *testing.T, public, token, transport string) *mcp.ClientSession {
	t.Helper()
	hc := bearerClient(token)
	var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: public + "/mcp", HTTPClient: hc, MaxRetries: -1}
	var opts *mcp.ClientSessionOptions
	switch transport {
	case "mcp-stateful":
		opts = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	case "sse":
		tr = &mcp.SSEClientTransport{Endpoint: public + "/sse", HTTPClient: hc}
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "access", Version: "1.0.0"}, nil).Connect(context.Background(), tr, opts)
	if err != nil {
		t.Fatalf("connect over %s: %v", transport, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestAccessControl proves who reaches which tool, on one server: the
// users × tools × transports matrix, then every revocation toolgate
// performs itself.
func TestAccessControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	ls := accessServer(t, accessUsers, nil)
	t.Run("matrix", func(t *testing.T) { testAccessMatrix(t, ls) })
	t.Run("revocation", func(t *testing.T) { testAccessRevocation(t, ls) })
}

// testAccessMatrix: for every user, tool and transport, a tool the rules
// deny is absent from tools/list and its tools/call is refused with the
// gate's message; a tool they allow is listed and runs.
func testAccessMatrix(t *testing.T, ls *liveServer) {

	type row struct {
		user      accessUser
		transport string
	}
	var rows []row
	for _, u := range accessUsers {
		rows = append(rows, row{u, "mcp"})
	}
	// A subset over the other transports: a stateful session and the
	// legacy SSE transport (whose tokens are issued for /sse).
	rows = append(rows, row{accessUsers[1], "mcp-stateful"}, row{accessUsers[4], "mcp-stateful"},
		row{accessUsers[2], "sse"}, row{accessUsers[3], "sse"})
	allowedSomewhere, deniedSomewhere := map[string]bool{}, map[string]bool{}
	for _, r := range rows {
		t.Run(r.user.email+"/"+r.transport, func(t *testing.T) {
			path := "/mcp"
			if r.transport == "sse" {
				path = "/sse"
			}
			token, _ := signInAt(t, ls.public, path, r.user.email)
			cs := connectMCP(t, ls.public, token, r.transport)

			var want []string
			for _, tool := range accessTools {
				if tool.rule.allows(r.user) {
					want = append(want, tool.name)
					allowedSomewhere[tool.name] = true
				} else {
					deniedSomewhere[tool.name] = true
				}
			}
			slices.Sort(want)
			if got := listTools(t, cs); !slices.Equal(got, want) {
				t.Errorf("tools/list = %v, want %v", got, want)
			}
			for _, tool := range accessTools {
				res := callTool(t, cs, tool.name, accessArgs[tool.name])
				text := contentText(res)
				if !tool.rule.allows(r.user) {
					if want := tool.rule.refusal(tool.name, r.user); !res.IsError || text != want {
						t.Errorf("tools/call %s = %q (IsError %v), want the refusal %q", tool.name, text, res.IsError, want)
					}
					continue
				}
				if res.IsError {
					t.Errorf("tools/call %s refused: %s", tool.name, text)
					continue
				}
				switch tool.name {
				case "add":
					if text != "42" {
						t.Errorf("add = %q, want 42", text)
					}
				case "whoami":
					if !strings.Contains(text, r.user.email) {
						t.Errorf("whoami does not name %s:\n%s", r.user.email, text)
					}
				case "generateImage":
					if !slices.ContainsFunc(res.Content, func(c mcp.Content) bool { _, ok := c.(*mcp.ImageContent); return ok }) {
						t.Errorf("generateImage returned no image: %q", text)
					}
				default:
					if want := tool.name + " ran for " + r.user.email; text != want {
						t.Errorf("tools/call %s = %q, want %q", tool.name, text, want)
					}
				}
			}
		})
	}
	// The matrix means something only if the rules both admit and refuse:
	// every restricted tool is allowed to someone and denied to someone.
	for _, tool := range accessTools {
		restricted := len(tool.rule.all)+len(tool.rule.any)+len(tool.rule.roles)+len(tool.rule.orgs) > 0
		if !allowedSomewhere[tool.name] || restricted != deniedSomewhere[tool.name] {
			t.Errorf("tool %s: allowed to someone %v, denied to someone %v; the users do not exercise its rule", tool.name, allowedSomewhere[tool.name], deniedSomewhere[tool.name])
		}
	}
}

// tokenReply is a /token answer.
type tokenReply struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Error        string `json:"error"`
	// sent and received bound the instant the server issued the tokens.
	sent, received time.Time
}

// refreshTokens redeems a public client's refresh token at /token.
func refreshTokens(t *testing.T, public, clientID, rt string) (int, tokenReply) {
	t.Helper()
	var reply tokenReply
	reply.sent = time.Now()
	resp, err := http.PostForm(public+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reply.received = time.Now()
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("/token answered %d and no JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, reply
}

// revokeToken posts token to /revoke as a public client (RFC 7009).
func revokeToken(t *testing.T, public, clientID, token string) {
	t.Helper()
	resp, err := http.PostForm(public+"/revoke", url.Values{"token": {token}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/revoke = %d, want 200", resp.StatusCode)
	}
}

// callOpen makes one tools/call of the gated plugin's open tool with a
// bare HTTP request (a lone stateless call, as both SDKs accept) and
// returns the status, the WWW-Authenticate header and the body.
func callOpen(t *testing.T, public, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", public+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"open","arguments":{}}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// mustWork fails unless token may still call open.
func mustWork(t *testing.T, public, token, email, when string) {
	t.Helper()
	if status, _, body := callOpen(t, public, token); status != http.StatusOK || !strings.Contains(body, "open ran for "+email) {
		t.Fatalf("%s: tools/call open = %d %s, want it to run for %s", when, status, body, email)
	}
}

// mustBeRefused fails unless the request with token is refused as
// invalid_token.
func mustBeRefused(t *testing.T, public, token, when string) {
	t.Helper()
	if status, challenge, body := callOpen(t, public, token); status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("%s: the next request = %d %q %s, want 401 invalid_token", when, status, challenge, body)
	}
}

// session is one signed-in client of the revocation tests.
type session struct {
	access, refresh string
	grant           admin.Grant
}

// grantsOf lists the live grants of email through `toolgate grants list`.
func grantsOf(t *testing.T, ls *liveServer, email string) []admin.Grant {
	t.Helper()
	code, out, errOut := ls.cli(t, "grants", "list", "-user", email, "-json")
	var gs []admin.Grant
	if code != exitOK || json.Unmarshal([]byte(out), &gs) != nil {
		t.Fatalf("grants list -user %s = %d\n%s%s", email, code, out, errOut)
	}
	return gs
}

// signInSession signs email in with a newly registered client and finds
// the grant that sign-in created.
func signInSession(t *testing.T, ls *liveServer, email string) session {
	t.Helper()
	before := grantsOf(t, ls, email)
	access, refresh := signIn(t, ls.public, email)
	for _, g := range grantsOf(t, ls, email) {
		if !slices.ContainsFunc(before, func(b admin.Grant) bool { return b.ID == g.ID }) {
			return session{access: access, refresh: refresh, grant: g}
		}
	}
	t.Fatalf("no new grant for %s after signing in", email)
	return session{}
}

// testAccessRevocation: every revocation toolgate itself performs is
// refused on the very next request after the event, and touches nothing
// else.
func testAccessRevocation(t *testing.T, ls *liveServer) {
	bystander := signInSession(t, ls, "bob@example.com")

	t.Run("grants revoke", func(t *testing.T) {
		s := signInSession(t, ls, "carol@example.com")
		other := signInSession(t, ls, "carol@example.com")
		// A live stateful session and a warm token cache must not delay
		// the refusal.
		cs := connectMCP(t, ls.public, s.access, "mcp-stateful")
		mustWork(t, ls.public, s.access, "carol@example.com", "before")
		if code, out, errOut := ls.cli(t, "grants", "revoke", s.grant.ID); code != exitOK {
			t.Fatalf("grants revoke = %d %s%s", code, out, errOut)
		}
		mustBeRefused(t, ls.public, s.access, "after grants revoke")
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "open", Arguments: map[string]any{}}); err == nil {
			t.Error("the revoked grant's stateful session still calls tools")
		}
		if status, reply := refreshTokens(t, ls.public, s.grant.ClientID, s.refresh); status != http.StatusBadRequest || reply.Error != "invalid_grant" {
			t.Errorf("refresh of the revoked grant = %d %q, want 400 invalid_grant", status, reply.Error)
		}
		mustWork(t, ls.public, other.access, "carol@example.com", "carol's other grant")
	})

	t.Run("grants revoke -user", func(t *testing.T) {
		s1, s2 := signInSession(t, ls, "dave@example.com"), signInSession(t, ls, "dave@example.com")
		mustWork(t, ls.public, s1.access, "dave@example.com", "before")
		mustWork(t, ls.public, s2.access, "dave@example.com", "before")
		n := len(grantsOf(t, ls, "dave@example.com")) // these two, and the matrix's
		if code, out, errOut := ls.cli(t, "grants", "revoke", "-user", "dave@example.com"); code != exitOK || !strings.Contains(out, fmt.Sprintf("revoked %d grant(s)", n)) {
			t.Fatalf("grants revoke -user = %d %s%s, want %d revoked", code, out, errOut, n)
		}
		mustBeRefused(t, ls.public, s1.access, "after grants revoke -user (first grant)")
		mustBeRefused(t, ls.public, s2.access, "after grants revoke -user (second grant)")
		if gs := grantsOf(t, ls, "dave@example.com"); len(gs) != 0 {
			t.Errorf("grants left after revoking all of dave's: %+v", gs)
		}
	})

	t.Run("client revokes its refresh token", func(t *testing.T) {
		s := signInSession(t, ls, "erin@example.com")
		mustWork(t, ls.public, s.access, "erin@example.com", "before")
		revokeToken(t, ls.public, s.grant.ClientID, s.refresh)
		mustBeRefused(t, ls.public, s.access, "after /revoke of the refresh token")
		if status, reply := refreshTokens(t, ls.public, s.grant.ClientID, s.refresh); status != http.StatusBadRequest || reply.Error != "invalid_grant" {
			t.Errorf("refresh after /revoke = %d %q, want 400 invalid_grant", status, reply.Error)
		}
	})

	t.Run("client revokes its access token", func(t *testing.T) {
		s := signInSession(t, ls, "erin@example.com")
		mustWork(t, ls.public, s.access, "erin@example.com", "before")
		revokeToken(t, ls.public, s.grant.ClientID, s.access)
		mustBeRefused(t, ls.public, s.access, "after /revoke of the access token")
		// Only that token ended: the grant lives on.
		status, reply := refreshTokens(t, ls.public, s.grant.ClientID, s.refresh)
		if status != http.StatusOK {
			t.Fatalf("refresh after revoking only the access token = %d %q", status, reply.Error)
		}
		mustWork(t, ls.public, reply.AccessToken, "erin@example.com", "the refreshed token")
	})

	t.Run("clients delete", func(t *testing.T) {
		s := signInSession(t, ls, "frank@example.com")
		mustWork(t, ls.public, s.access, "frank@example.com", "before")
		if code, out, errOut := ls.cli(t, "clients", "delete", s.grant.ClientID); code != exitOK {
			t.Fatalf("clients delete = %d %s%s", code, out, errOut)
		}
		mustBeRefused(t, ls.public, s.access, "after clients delete")
		if status, _ := refreshTokens(t, ls.public, s.grant.ClientID, s.refresh); status == http.StatusOK {
			t.Error("a deleted client's refresh token still refreshes")
		}
		if slices.ContainsFunc(grantsOf(t, ls, "frank@example.com"), func(g admin.Grant) bool { return g.ID == s.grant.ID }) {
			t.Errorf("the deleted client's grant %s is still listed", s.grant.ID)
		}
	})

	mustWork(t, ls.public, bystander.access, "bob@example.com", "a bystander after every revocation")
}

// waitUntil returns once the clock has passed instant: a deadline loop on
// the instant itself, not a guessed sleep.
func waitUntil(instant time.Time) {
	for {
		d := time.Until(instant)
		if d <= 0 {
			return
		}
		time.Sleep(d)
	}
}

// TestAccessUpstreamEvents: with the development AuthKit issuing short
// tokens (auth.dev_access_token_ttl, as WorkOS's access token duration
// does), toolgate's tokens expire with AuthKit's; an expired token is
// refused on the first request after its expiry. The development AuthKit
// delivers WorkOS webhooks to /webhooks/workos before EndSessions and
// SetPermissions return: an AuthKit session ended upstream is refused on
// the very next request, and a permission removed upstream refuses the
// access token at once and is gone after the refresh that follows.
// Without webhooks (delivery turned off, as with an endpoint not
// registered at WorkOS) an ended session is refused on the next refresh,
// and in any case on the first request after the token's expiry, never
// later.
func TestAccessUpstreamEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	const upstreamTTL = 3 * time.Second
	users := []accessUser{
		{"alice@example.com", "admin", "Acme", []string{"image_generation"}},
		{"bob@example.com", "member", "Acme", nil},
		{"carol@example.com", "member", "Acme", nil},
		{"dave@example.com", "admin", "Acme", []string{"image_generation"}},
		{"erin@example.com", "member", "Acme", nil},
	}
	ls := accessServer(t, users, func(cfg *config.Config) {
		cfg.Auth.DevAccessTokenTTL = upstreamTTL
		cfg.Auth.AccessTokenTTL = time.Hour // capped by AuthKit's
	})
	// A fresh token with known bounds on its expiry: the server issued it
	// between sent and received, so it expires no later than
	// received + expires_in.
	fresh := func(email string) (session, tokenReply) {
		t.Helper()
		s := signInSession(t, ls, email)
		status, reply := refreshTokens(t, ls.public, s.grant.ClientID, s.refresh)
		if status != http.StatusOK {
			t.Fatalf("refresh for %s = %d %q", email, status, reply.Error)
		}
		if reply.ExpiresIn < 1 || reply.ExpiresIn > int64(upstreamTTL/time.Second) {
			t.Fatalf("expires_in = %d, want at most AuthKit's %s although access_token_ttl is 1h", reply.ExpiresIn, upstreamTTL)
		}
		s.access, s.refresh = reply.AccessToken, reply.RefreshToken
		return s, reply
	}
	expiry := func(r tokenReply) time.Time { return r.received.Add(time.Duration(r.ExpiresIn) * time.Second) }
	// Whether a request completed by done certainly reached the server
	// before the token's expiry (it cannot have expired before
	// sent + expires_in).
	surelyBefore := func(r tokenReply, done time.Time) bool {
		return done.Before(r.sent.Add(time.Duration(r.ExpiresIn) * time.Second))
	}

	// Before its expiry a token works (checked only when the request
	// certainly reached the server in time, so a slow machine cannot make
	// this fail).
	worksWhileFresh := func(s session, reply tokenReply, email string) {
		t.Helper()
		status, _, body := callOpen(t, ls.public, s.access)
		if surelyBefore(reply, time.Now()) && (status != http.StatusOK || !strings.Contains(body, "open ran for "+email)) {
			t.Errorf("%s's token before its expiry = %d %s, want it to work", email, status, body)
		}
	}
	expiring, expiringReply := fresh("alice@example.com")
	worksWhileFresh(expiring, expiringReply, "alice@example.com")

	// bob's session ends upstream while webhooks are not delivered, and
	// his client keeps its token and does not refresh: the token works
	// until it expires with AuthKit's.
	ended, endedReply := fresh("bob@example.com")
	worksWhileFresh(ended, endedReply, "bob@example.com")
	ls.s.DevAuthKit().SetWebhookDelivery(false)
	n, err := ls.s.DevAuthKit().EndSessions("bob@example.com")
	ls.s.DevAuthKit().SetWebhookDelivery(true)
	if err != nil || n != 1 {
		t.Fatalf("EndSessions(bob) = %d, %v", n, err)
	}
	worksWhileFresh(ended, endedReply, "bob@example.com") // no webhook: still served

	// erin's session ends upstream with webhooks delivered: the very next
	// request with her unexpired token is refused, her grant is gone, and
	// her refresh token with it.
	erin, erinReply := fresh("erin@example.com")
	worksWhileFresh(erin, erinReply, "erin@example.com")
	if n, err := ls.s.DevAuthKit().EndSessions("erin@example.com"); err != nil || n != 1 {
		t.Fatalf("EndSessions(erin) = %d, %v", n, err)
	}
	mustBeRefused(t, ls.public, erin.access, "right after the AuthKit session ended (webhook)")
	if gs := grantsOf(t, ls, "erin@example.com"); len(gs) != 0 {
		t.Errorf("erin's grant outlived the session.revoked webhook: %+v", gs)
	}
	if status, reply := refreshTokens(t, ls.public, erin.grant.ClientID, erin.refresh); status != http.StatusBadRequest || reply.Error != "invalid_grant" {
		t.Errorf("erin's refresh after the webhook = %d %q, want 400 invalid_grant", status, reply.Error)
	}

	// The upstream session of carol ends and her client refreshes at once:
	// refused, and her unexpired access token with it.
	carol, _ := fresh("carol@example.com")
	if n, err := ls.s.DevAuthKit().EndSessions("carol@example.com"); err != nil || n != 1 {
		t.Fatalf("EndSessions(carol) = %d, %v", n, err)
	}
	if status, reply := refreshTokens(t, ls.public, carol.grant.ClientID, carol.refresh); status != http.StatusBadRequest || reply.Error != "invalid_grant" {
		t.Errorf("refresh after the AuthKit session ended = %d %q, want 400 invalid_grant", status, reply.Error)
	}
	mustBeRefused(t, ls.public, carol.access, "after the refresh found the AuthKit session ended")
	if gs := grantsOf(t, ls, "carol@example.com"); len(gs) != 0 {
		t.Errorf("carol's grant outlived her AuthKit session: %+v", gs)
	}

	// A permission removed upstream: the role's webhook refuses dave's
	// access token at once, the refresh brings the change, and
	// generateImage is gone from dave's list and refused.
	dave := signInSession(t, ls, "dave@example.com")
	mustWork(t, ls.public, dave.access, "dave@example.com", "dave's token before the permission change")
	if err := ls.s.DevAuthKit().SetPermissions("dave@example.com", nil); err != nil {
		t.Fatal(err)
	}
	mustBeRefused(t, ls.public, dave.access, "right after dave's role lost a permission (webhook)")
	status, reply := refreshTokens(t, ls.public, dave.grant.ClientID, dave.refresh)
	if status != http.StatusOK {
		t.Fatalf("dave's refresh = %d %q", status, reply.Error)
	}
	cs := connectMCP(t, ls.public, reply.AccessToken, "mcp")
	if got := listTools(t, cs); slices.Contains(got, "generateImage") {
		t.Errorf("after losing image_generation, dave lists %v", got)
	}
	res := callTool(t, cs, "generateImage", map[string]any{"prompt": "a kite"})
	if want := "generateImage needs permission image_generation; you have none"; !res.IsError || contentText(res) != want {
		t.Errorf("dave's generateImage = %q (IsError %v), want %q", contentText(res), res.IsError, want)
	}

	// The first request after a token's expiry is refused.
	waitUntil(expiry(expiringReply))
	mustBeRefused(t, ls.public, expiring.access, "after the access token expired")
	waitUntil(expiry(endedReply))
	mustBeRefused(t, ls.public, ended.access, "after the token of an ended AuthKit session expired")

	// Expiry is not revocation: alice refreshes and goes on. bob's refresh
	// finds his session ended, and his grant goes.
	status, reply = refreshTokens(t, ls.public, expiring.grant.ClientID, expiring.refresh)
	if status != http.StatusOK {
		t.Fatalf("alice's refresh after expiry = %d %q", status, reply.Error)
	}
	mustWork(t, ls.public, reply.AccessToken, "alice@example.com", "alice's refreshed token")
	if status, reply := refreshTokens(t, ls.public, ended.grant.ClientID, ended.refresh); status != http.StatusBadRequest || reply.Error != "invalid_grant" {
		t.Errorf("bob's refresh after his AuthKit session ended = %d %q, want 400 invalid_grant", status, reply.Error)
	}
	if gs := grantsOf(t, ls, "bob@example.com"); len(gs) != 0 {
		t.Errorf("bob's grant outlived his AuthKit session: %+v", gs)
	}
}
