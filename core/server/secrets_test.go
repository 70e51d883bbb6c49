package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store"
)

// secretSet collects every secret value the flow issues or configures.
type secretSet struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
}

func (s *secretSet) add(what string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	for _, v := range values {
		if v != "" {
			s.values[v] = what
		}
	}
}

// count returns how many values were collected whose description starts
// with what.
func (s *secretSet) count(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.values {
		if strings.HasPrefix(w, what) {
			n++
		}
	}
	return n
}

// forms are the ways a secret could be written down: as is, URL-encoded,
// and base64 in all four alphabets.
func secretForms(v string) []string {
	b := []byte(v)
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// upstreamRecorder sits in front of the whole server and records what the
// server and the development AuthKit exchange at
// /user_management/authenticate (the server calls its own listener): the
// API key, upstream codes and PKCE verifiers, and the upstream access and
// refresh tokens, which no client ever sees.
type upstreamRecorder struct {
	next    http.Handler
	secrets *secretSet
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/user_management/authenticate") {
		u.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req map[string]any
	_ = json.Unmarshal(body, &req)
	for _, k := range []string{"client_secret", "code", "code_verifier", "refresh_token"} {
		if v, ok := req[k].(string); ok {
			u.secrets.add("upstream "+k, v)
		}
	}
	rec := httptest.NewRecorder()
	u.next.ServeHTTP(rec, r)
	var resp map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	for _, k := range []string{"access_token", "refresh_token"} {
		if v, ok := resp[k].(string); ok {
			u.secrets.add("upstream "+k, v)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// buildTestPlugins builds the reference plugins add, whoami and
// generateimage, and testdata/secretuser, into one folder.
func buildTestPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, pkg := range map[string]string{
		"add": "../../plugins/add", "whoami": "../../plugins/whoami",
		"generateimage": "../../plugins/generateimage", "secretuser": "./testdata/secretuser",
	} {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, name+".wasm"), pkg)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// flowBrowser walks the sign-in like a browser (consent page: approve;
// development AuthKit login: the user's button) and records every cookie,
// form token, upstream state and code it sees as a secret.
type flowBrowser struct {
	t       *testing.T
	client  *http.Client
	user    string
	secrets *secretSet
}

func newFlowBrowser(t *testing.T, user string, secrets *secretSet) *flowBrowser {
	jar, _ := cookiejar.New(nil)
	return &flowBrowser{t: t, user: user, secrets: secrets, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// walk starts at target and returns the redirect to the client's
// redirect URI.
func (b *flowBrowser) walk(target, redirectURI string) *url.URL {
	b.t.Helper()
	req, _ := http.NewRequest("GET", target, nil)
	for range 20 {
		resp, err := b.client.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			b.secrets.add("cookie "+c.Name, c.Value)
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				b.t.Fatal(err)
			}
			q := loc.Query()
			b.secrets.add("authorization code", q.Get("code"))
			if !strings.HasPrefix(loc.String(), redirectURI) {
				b.secrets.add("upstream state", q.Get("state")) // the client's own state is not ours to hide
			}
			if strings.HasPrefix(loc.String(), redirectURI) {
				return loc
			}
			req, _ = http.NewRequest("GET", loc.String(), nil)
		case resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"):
			form := url.Values{}
			for _, m := range hiddenField.FindAllStringSubmatch(string(body), -1) {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
			switch {
			case form.Has("login_id"):
				form.Set("email", b.user)
				b.secrets.add("login form token", form.Get("login_id"))
			case form.Has("request"):
				form.Set("action", "approve")
				b.secrets.add("consent form token", form.Get("request"), form.Get("csrf_token"))
			default:
				b.t.Fatalf("unexpected page %s: %s", resp.Request.URL, body)
			}
			u, _ := resp.Request.URL.Parse("authorize")
			req, _ = http.NewRequest("POST", u.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			b.t.Fatalf("%s answered %d: %s", resp.Request.URL, resp.StatusCode, body)
		}
	}
	b.t.Fatal("sign-in: too many steps")
	return nil
}

// oauthAnswer is a /token or /register answer.
type oauthAnswer struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// flowClient is an OAuth client of the server under test.
type flowClient struct {
	t       *testing.T
	public  string
	id      string
	secret  string // empty for a public client
	secrets *secretSet
}

const flowRedirect = "http://127.0.0.1:5555/cb"

func registerClient(t *testing.T, public string, confidential bool, secrets *secretSet) *flowClient {
	t.Helper()
	method := "none"
	if confidential {
		method = "client_secret_basic"
	}
	body := `{"redirect_uris":["` + flowRedirect + `"],"token_endpoint_auth_method":"` + method + `","grant_types":["authorization_code","refresh_token"],"client_name":"secrets test"}`
	resp, err := http.Post(public+"/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a oauthAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusCreated || a.ClientID == "" {
		t.Fatalf("register = %d %+v %v", resp.StatusCode, a, err)
	}
	if confidential && a.ClientSecret == "" {
		t.Fatal("a confidential client got no secret")
	}
	secrets.add("client secret", a.ClientSecret)
	if a.ClientSecret != "" {
		secrets.add("client credentials", a.ClientID+":"+a.ClientSecret)
	}
	return &flowClient{t: t, public: public, id: a.ClientID, secret: a.ClientSecret, secrets: secrets}
}

// post sends form to path with this client's authentication.
func (c *flowClient) post(path string, form url.Values, secret string) (int, oauthAnswer) {
	c.t.Helper()
	if secret == "" {
		form.Set("client_id", c.id)
	}
	req, _ := http.NewRequest("POST", c.public+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a oauthAnswer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	c.secrets.add("access token", a.AccessToken)
	c.secrets.add("refresh token", a.RefreshToken)
	return resp.StatusCode, a
}

// signIn runs the browser flow as user and exchanges the code.
func (c *flowClient) signIn(user string) oauthAnswer {
	c.t.Helper()
	return c.signInWith(newFlowBrowser(c.t, user, c.secrets))
}

// signInWith runs the browser flow in b and exchanges the code.
func (c *flowClient) signInWith(b *flowBrowser) oauthAnswer {
	c.t.Helper()
	verifier := store.NewSecret() + "-verifier"
	c.secrets.add("PKCE verifier", verifier)
	q := url.Values{
		"client_id": {c.id}, "redirect_uri": {flowRedirect}, "response_type": {"code"},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
		"state": {"client-state"}, "resource": {c.public + PathMCP},
	}
	loc := b.walk(c.public+"/authorize?"+q.Encode(), flowRedirect)
	code := loc.Query().Get("code")
	status, a := c.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {flowRedirect}}, c.secret)
	if status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		c.t.Fatalf("code exchange for %s = %d %+v", b.user, status, a)
	}
	return a
}

func s256(v string) string {
	return base64.RawURLEncoding.EncodeToString(sha256Sum([]byte(v)))
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connectMCP(t *testing.T, public, token string) *mcp.ClientSession {
	t.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: public + PathMCP, HTTPClient: &http.Client{Transport: bearer{token}}, MaxRetries: -1}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "secrets-test", Version: "1.0.0"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n"), res.IsError
}

// TestNoSecretsAfterTheWholeFlow runs the product's whole flow through the
// composed server in development mode, with every log at debug level
// (server, sign-in, development AuthKit, plugins) captured: registration
// of a confidential client, consent, sign-in, code exchange, refresh, tool
// calls (a plugin reading a secret from the environment, generateImage
// calling an OpenAI-compatible service with its API key), a denied call,
// revocation, a failing refresh, rejected bearer tokens. It collects every
// secret issued or configured along the way and checks that none appears,
// as is, URL-encoded or in base64, in any log line, in the audit records
// (from the store and from the admin endpoint) or in the admin endpoint's
// grant and client lists.
func TestNoSecretsAfterTheWholeFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and runs the whole flow")
	}
	secrets := &secretSet{}
	dist := buildTestPlugins(t)

	// An OpenAI-compatible image service that insists on the API key.
	openAIKey := "sk-test-" + store.NewSecret()
	pluginToken := "plugin-token-" + store.NewSecret()
	secrets.add("OpenAI API key", openAIKey)
	secrets.add("plugin secret", pluginToken)
	var keyed, refused int
	var imgMu sync.Mutex
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt string `json:"prompt"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		imgMu.Lock()
		defer imgMu.Unlock()
		if r.URL.Path != "/v1/images/generations" || r.Header.Get("Authorization") != "Bearer "+openAIKey || strings.Contains(req.Prompt, "refuse") {
			refused++
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"message":"Incorrect API key provided"}}`)
			return
		}
		keyed++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":[{"b64_json":%q}]}`, base64.StdEncoding.EncodeToString(pngBuf.Bytes()))
	}))
	t.Cleanup(images.Close)
	imagesURL := "http://localhost:" + strconv.Itoa(images.Listener.Addr().(*net.TCPAddr).Port)
	t.Setenv("TOOLGATE_TEST_OPENAI_API_KEY", openAIKey)
	t.Setenv("TOOLGATE_TEST_PLUGIN_TOKEN", pluginToken)
	pluginsFile := filepath.Join(t.TempDir(), "plugins.toml")
	if err := os.WriteFile(pluginsFile, []byte(`drop_in = "deny"
[plugins.add]
[plugins.whoami]
list_tools = true
[plugins.generateimage]
timeout = "60s"
http = ["api.cloudflare.com", "api.openai.com", "`+imagesURL+`"]
allow_private_hosts = true
progress = true
config = { backend = "openai", openai_base_url = "`+imagesURL+`/v1", openai_model = "dall-e-3", openai_size = "1024x1024", request_timeout = "20s" }
secrets = { cloudflare_account_id = "TOOLGATE_TEST_UNSET_ACCOUNT", cloudflare_api_token = "TOOLGATE_TEST_UNSET_TOKEN", openai_api_key = "TOOLGATE_TEST_OPENAI_API_KEY" }
[plugins.secretuser]
secrets = { token = "TOOLGATE_TEST_PLUGIN_TOKEN" }
`), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.Server.AdminListen = "127.0.0.1:0"
	cfg.Store.SyncWrites = false
	cfg.Plugins.Dir = dist
	cfg.Plugins.Config = pluginsFile
	cfg.Plugins.Watch = false
	cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
	cookieKey := "cookie-key-" + store.NewSecret()
	storeKey := fmt.Sprintf("%x", sha256Sum([]byte(store.NewSecret())))
	cfg.Auth.CookieEncryptionKey = config.Secret(cookieKey)
	cfg.Store.EncryptionKey = config.Secret(storeKey)
	secrets.add("cookie key", cookieKey)
	secrets.add("store encryption key", storeKey)

	logs := &syncBuffer{}
	logger := NewLogger(logs, config.LogConfig{Level: "debug", Format: "json"})
	s := startBadgerServer(t, cfg, logger, func(next http.Handler) http.Handler {
		return &upstreamRecorder{next: next, secrets: secrets}
	})
	secrets.add("development AuthKit API key", s.auth.dev.APIKey())
	adminToken, err := admin.LoadOrCreateToken(cfg.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	secrets.add("admin token", adminToken)
	public := s.cfg.Server.PublicURL

	// alice: a confidential client, sign-in, refresh, tool calls.
	conf := registerClient(t, public, true, secrets)
	first := conf.signIn("alice@example.com")
	status, refreshed := conf.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, conf.secret)
	if status != http.StatusOK || refreshed.AccessToken == "" {
		t.Fatalf("refresh = %d %+v", status, refreshed)
	}
	as := connectMCP(t, public, refreshed.AccessToken)
	if text, isErr := callText(t, as, "add", map[string]any{"a": 2, "b": 40}); isErr || text != "42" {
		t.Errorf("add = %q (error %v)", text, isErr)
	}
	if text, isErr := callText(t, as, "whoami", map[string]any{}); isErr || !strings.Contains(text, "alice@example.com") {
		t.Errorf("whoami = %q (error %v)", text, isErr)
	}
	if text, isErr := callText(t, as, "check", map[string]any{}); isErr || text != fmt.Sprintf("the secret has %d bytes", len(pluginToken)) {
		t.Errorf("check = %q (error %v): the plugin did not get its secret", text, isErr)
	}
	if text, isErr := callText(t, as, "generateImage", map[string]any{"prompt": "a lighthouse at dusk"}); isErr {
		t.Errorf("generateImage through the OpenAI-compatible fake = tool error %q", text)
	}
	if text, isErr := callText(t, as, "generateImage", map[string]any{"prompt": "refuse this one"}); !isErr {
		t.Errorf("generateImage refused by the service = %q, want a tool error", text)
	}
	imgMu.Lock()
	if keyed != 1 || refused != 1 {
		t.Errorf("image service saw %d calls with the key and refused %d, want 1 and 1", keyed, refused)
	}
	imgMu.Unlock()

	// bob: a public client; generateImage is denied to him.
	pub := registerClient(t, public, false, secrets)
	bob := pub.signIn("bob@example.com")
	bs := connectMCP(t, public, bob.AccessToken)
	if text, isErr := callText(t, bs, "generateImage", map[string]any{"prompt": "x"}); !isErr || !strings.Contains(text, "image_generation") {
		t.Errorf("bob's generateImage = %q (error %v), want a denial", text, isErr)
	}

	// Failures: a wrong client secret, a reused (rotated) refresh token,
	// which ends alice's grant, revocation, rejected bearer tokens.
	if status, a := conf.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}}, "wrong-"+conf.secret); status != http.StatusUnauthorized {
		t.Errorf("refresh with a wrong client secret = %d %+v, want 401", status, a)
	}
	if status, a := conf.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, conf.secret); status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("reusing a rotated refresh token = %d %+v, want 400 invalid_grant", status, a)
	}
	if status, _ := pub.post("/revoke", url.Values{"token": {bob.RefreshToken}, "token_type_hint": {"refresh_token"}}, ""); status != http.StatusOK {
		t.Errorf("revoke bob's refresh token = %d", status)
	}
	for what, tok := range map[string]string{
		"alice's token after refresh-token reuse": refreshed.AccessToken,
		"bob's token after revocation":            bob.AccessToken,
		"a made-up token":                         "made-up-" + store.NewSecret(),
	} {
		secrets.add("rejected bearer token", tok)
		if resp, _ := do(t, "POST", public+PathMCP, "", tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s = %d, want 401", what, resp.StatusCode)
		}
	}

	// The audit log, once every record is written (they are batched).
	adminGet := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+s.AdminAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin GET %s = %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var audit string
	deadline := time.Now().Add(30 * time.Second)
	for {
		audit = adminGet("/v1/audit?limit=1000")
		if strings.Count(audit, `"tool":`) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	records, err := s.store.ListAudit(t.Context(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(records)

	// The capture must hold the whole flow, or the check below proves
	// nothing.
	captured := logs.String()
	for _, want := range []string{
		`"level":"DEBUG"`, "auth: user signed in", "auth: tokens refreshed", "devauthkit: signed in",
		"secretuser: read the secret", "secretuser: check answered", `"msg":"request"`,
	} {
		if !strings.Contains(captured, want) {
			t.Errorf("the captured logs lack %q", want)
		}
	}
	if n := strings.Count(captured, "\n"); n < 50 {
		t.Errorf("only %d log lines captured", n)
	}
	for _, tool := range []string{"add", "whoami", "check", "generateImage"} {
		if !strings.Contains(string(stored), `"Tool":"`+tool+`"`) || !strings.Contains(audit, `"tool":"`+tool+`"`) {
			t.Errorf("no audit record of %s", tool)
		}
	}
	if !strings.Contains(audit, `"denied"`) || !strings.Contains(audit, `"tool_error"`) {
		t.Errorf("the audit lacks the denial or the tool error:\n%s", audit)
	}
	for _, what := range []string{"upstream client_secret", "upstream code_verifier", "upstream refresh_token", "upstream access_token", "upstream state", "authorization code", "refresh token", "consent form token", "cookie ", "client secret", "PKCE verifier"} {
		if secrets.count(what) == 0 {
			t.Errorf("the flow collected no %s", what)
		}
	}

	sources := map[string]string{
		"logs":            captured,
		"audit (admin)":   audit,
		"audit (store)":   string(stored),
		"grants (admin)":  adminGet("/v1/grants"),
		"clients (admin)": adminGet("/v1/clients"),
	}
	for value, what := range secrets.values {
		for _, form := range secretForms(value) {
			for name, text := range sources {
				if i := strings.Index(text, form); i >= 0 {
					t.Errorf("%s: a %s (%d bytes) appears in %s: …%s…", name, what, len(value), name, text[max(0, i-80):i])
				}
			}
		}
	}
	t.Logf("checked %d secrets against %d log lines and %d audit records", len(secrets.values), strings.Count(captured, "\n"), len(records))
}
