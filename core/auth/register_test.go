package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Checklist 17-19: every bad registration gets its exact error code and
// status, never a 500.
func TestRegisterNegative(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	long := "https://app.example/" + strings.Repeat("a", MaxRedirectURILen)
	var eleven []string
	for range 11 {
		eleven = append(eleven, `"https://app.example/cb"`)
	}
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"wrong content type", "text/plain", `{"redirect_uris":["https://a.example/cb"]}`, 400, ErrCodeInvalidClientMetadata},
		{"not json", "application/json", `redirect_uris`, 400, ErrCodeInvalidClientMetadata},
		{"json array", "application/json", `[]`, 400, ErrCodeInvalidClientMetadata},
		{"trailing data", "application/json", `{"redirect_uris":["https://a.example/cb"]} {}`, 400, ErrCodeInvalidClientMetadata},
		{"redirect_uris a string", "application/json", `{"redirect_uris":"https://a.example/cb"}`, 400, ErrCodeInvalidClientMetadata},
		{"no redirect_uris", "application/json", `{"client_name":"x"}`, 400, ErrCodeInvalidRedirectURI},
		{"empty redirect_uris", "application/json", `{"redirect_uris":[]}`, 400, ErrCodeInvalidRedirectURI},
		{"http non-loopback", "application/json", `{"redirect_uris":["http://evil.example/cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"fragment", "application/json", `{"redirect_uris":["https://a.example/cb#x"]}`, 400, ErrCodeInvalidRedirectURI},
		{"userinfo", "application/json", `{"redirect_uris":["https://u:p@a.example/cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"wildcard", "application/json", `{"redirect_uris":["https://*.a.example/cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"javascript", "application/json", `{"redirect_uris":["javascript:alert(1)"]}`, 400, ErrCodeInvalidRedirectURI},
		{"data", "application/json", `{"redirect_uris":["data:text/html,x"]}`, 400, ErrCodeInvalidRedirectURI},
		{"file", "application/json", `{"redirect_uris":["file:///etc/passwd"]}`, 400, ErrCodeInvalidRedirectURI},
		{"relative", "application/json", `{"redirect_uris":["/cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"https without host", "application/json", `{"redirect_uris":["https:///cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"uppercase scheme", "application/json", `{"redirect_uris":["HTTPS://a.example/cb"]}`, 400, ErrCodeInvalidRedirectURI},
		{"space", "application/json", `{"redirect_uris":["https://a.example/c b"]}`, 400, ErrCodeInvalidRedirectURI},
		{"too long", "application/json", `{"redirect_uris":["` + long + `"]}`, 400, ErrCodeInvalidRedirectURI},
		{"eleven uris", "application/json", `{"redirect_uris":[` + strings.Join(eleven, ",") + `]}`, 400, ErrCodeInvalidRedirectURI},
		{"private_key_jwt", "application/json", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, ErrCodeInvalidClientMetadata},
		{"implicit grant", "application/json", `{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}`, 400, ErrCodeInvalidClientMetadata},
		{"refresh only", "application/json", `{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}`, 400, ErrCodeInvalidClientMetadata},
		{"token response type", "application/json", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, 400, ErrCodeInvalidClientMetadata},
		{"unknown scope", "application/json", `{"redirect_uris":["https://a.example/cb"],"scope":"admin"}`, 400, ErrCodeInvalidClientMetadata},
		{"application type", "application/json", `{"redirect_uris":["https://a.example/cb"],"application_type":"desktop"}`, 400, ErrCodeInvalidClientMetadata},
		{"long name", "application/json", `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("n", 201) + `"}`, 400, ErrCodeInvalidClientMetadata},
		{"control in name", "application/json", `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0007b"}`, 400, ErrCodeInvalidClientMetadata},
		{"javascript logo", "application/json", `{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:alert(1)"}`, 400, ErrCodeInvalidClientMetadata},
		{"body too large", "application/json", `{"client_name":"` + strings.Repeat("n", maxRegisterBody) + `"}`, 413, ErrCodeInvalidClientMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do("POST", PathRegister, tt.contentType, tt.body, nil)
			var eb errorBody
			_ = json.Unmarshal(body, &eb)
			if resp.StatusCode != tt.status || eb.Error != tt.code {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, eb.Error, eb.Description, tt.status, tt.code)
			}
			if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	resp, _ := e.do("GET", PathRegister, "", "", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /register: %d, want 405", resp.StatusCode)
	}
}

func TestRegisterAccepts(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	tests := []struct {
		name, body string
		method     string
		secret     bool
	}{
		{"loopback ipv4, default method", `{"redirect_uris":["http://127.0.0.1/cb"]}`, authBasic, true},
		{"loopback ipv6 with port", `{"redirect_uris":["http://[::1]:8080/cb"],"token_endpoint_auth_method":"none"}`, authNone, false},
		{"localhost", `{"redirect_uris":["http://localhost:3000/callback"],"token_endpoint_auth_method":"none"}`, authNone, false},
		{"https post", `{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"client_secret_post"}`, authPost, true},
		{"private-use scheme", `{"redirect_uris":["cursor://anysphere.cursor-retrieval/oauth/callback"],"token_endpoint_auth_method":"none"}`, authNone, false},
		{"reverse-domain scheme", `{"redirect_uris":["com.example.app:/oauth2redirect"],"token_endpoint_auth_method":"none"}`, authNone, false},
		{"unknown fields ignored", `{"redirect_uris":["https://a.example/cb"],"contacts":["a@b.c"],"jwks":{"keys":[]},"token_endpoint_auth_method":"none"}`, authNone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.register(tt.body)
			if r.TokenEndpointAuthMethod != tt.method || (r.ClientSecret != "") != tt.secret {
				t.Errorf("method %q secret %v, want %q %v", r.TokenEndpointAuthMethod, r.ClientSecret != "", tt.method, tt.secret)
			}
			if tt.secret && (r.ClientSecretExpiresAt == nil || *r.ClientSecretExpiresAt != 0) {
				t.Errorf("client_secret_expires_at = %v, want 0", r.ClientSecretExpiresAt)
			}
			// Checklist 21: our ids never look like CIMD URLs.
			if strings.HasPrefix(r.ClientID, "https://") || len(r.ClientID) != 32 {
				t.Errorf("client id %q", r.ClientID)
			}
			if len(r.GrantTypes) == 0 || len(r.ResponseTypes) != 1 {
				t.Errorf("defaults not applied: %+v", r)
			}
			c, err := e.st.GetClient(context.Background(), r.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.secret && (c.SecretHash == "" || strings.Contains(c.SecretHash, r.ClientSecret)) {
				t.Error("the secret is not stored as a hash")
			}
		})
	}
}

// Checklist 20: the N+1th registration in a window gets 429.
func TestRegisterRateLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RegisterRate = 2 }, nil)
	e.publicClient()
	e.publicClient()
	resp, body := e.do("POST", PathRegister, "application/json", `{"redirect_uris":["https://a.example/cb"]}`, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third registration: %d %s, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// Unused registrations expire ClientTTL after their last use; using the
// client pushes the expiry back.
func TestClientExpiryExtendedByUse(t *testing.T) {
	now := time.Now().UTC()
	clock := now
	e := newTestEnv(t, func(c *Config) {
		c.ClientTTL = 10 * time.Hour
		c.Now = func() time.Time { return clock }
	}, nil)
	r := e.publicClient()
	c, _ := e.st.GetClient(context.Background(), r.ClientID)
	if d := c.ExpiresAt.Sub(now); d < 10*time.Hour-time.Second || d > 10*time.Hour+time.Second {
		t.Fatalf("new client expires in %s, want 10h", d)
	}
	clock = now.Add(2 * time.Hour)
	_, ch := pkce()
	resp, _ := e.do("GET", strings.TrimPrefix(e.authorizeURL(r.ClientID, ch, nil), e.base), "", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	c, _ = e.st.GetClient(context.Background(), r.ClientID)
	if d := c.ExpiresAt.Sub(now); d < 12*time.Hour-time.Second {
		t.Errorf("after use the client expires %s after creation, want 12h", d)
	}
}

func TestMatchRedirectURI(t *testing.T) {
	tests := []struct {
		registered, requested string
		want                  bool
	}{
		{"https://a.example/cb", "https://a.example/cb", true},
		{"https://a.example/cb", "https://a.example/cb/", false},
		{"https://a.example/cb", "https://a.example:443/cb", false},
		{"https://a.example/cb", "https://A.example/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb", true},
		{"http://127.0.0.1:80/cb", "http://127.0.0.1:5555/cb", true},
		{"http://[::1]/cb", "http://[::1]:9/cb", true},
		{"http://localhost/cb", "http://localhost:1234/cb", true},
		{"http://127.0.0.1/cb", "http://localhost:5555/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb2", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb?x=1", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5555/cb#f", false},
		{"http://127.0.0.1/cb", "http://u@127.0.0.1:5555/cb", false},
		{"http://127.0.0.1/cb", "https://127.0.0.1:5555/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:abc/cb", false},
		{"cursor://x/cb", "cursor://x/cb", true},
		{"cursor://x/cb", "cursor://x:1/cb", false},
	}
	for _, tt := range tests {
		if got := matchRedirectURI(tt.registered, tt.requested); got != tt.want {
			t.Errorf("matchRedirectURI(%q, %q) = %v, want %v", tt.registered, tt.requested, got, tt.want)
		}
	}
}
