package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Checklist 12-15: RFC 8414 metadata, every field set, accepted by the
// go-sdk's own validating client.
func TestASMetadata(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	resp, body := e.do("GET", PathASMetadata, "", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                                         e.base,
		"authorization_endpoint":                         e.base + "/authorize",
		"token_endpoint":                                 e.base + "/token",
		"registration_endpoint":                          e.base + "/register",
		"revocation_endpoint":                            e.base + "/revoke",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []any{"S256"},
		"token_endpoint_auth_methods_supported":          []any{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":     []any{"none", "client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []any{DefaultScope},
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          true,
	}
	for k, v := range m {
		if s, ok := v.(string); ok && s == "" {
			t.Errorf("field %s is empty", k)
		}
		w, ok := want[k]
		if !ok {
			t.Errorf("unexpected field %s", k)
			continue
		}
		gb, _ := json.Marshal(v)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("%s = %s, want %s", k, gb, wb)
		}
	}
	for k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}
	asm, err := oauthex.GetAuthServerMeta(context.Background(), e.base+PathASMetadata, e.base, nil)
	if err != nil || asm == nil {
		t.Fatalf("go-sdk GetAuthServerMeta: %v", err)
	}
}

// Checklist 16, 22: with CIMD or registration off, the metadata omits the
// flag or endpoint (never an empty or false field) and /register is gone.
func TestASMetadataToggles(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.DisableCIMD, c.DisableRegistration = true, true }, nil)
	_, body := e.do("GET", PathASMetadata, "", "", nil)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_id_metadata_document_supported", "registration_endpoint"} {
		if _, ok := m[k]; ok {
			t.Errorf("metadata has %s while it is off: %s", k, body)
		}
	}
	if resp, _ := e.do("POST", PathRegister, "application/json", `{"redirect_uris":["https://a.example/cb"]}`, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /register with registration off: %d, want 404", resp.StatusCode)
	}
	_, ch := pkce()
	resp, body := e.do("GET", strings.TrimPrefix(e.authorizeURL("https://client.example/c.json", ch, nil), e.base), "", "", nil)
	if m := pageErrorCode.FindSubmatch(body); resp.StatusCode != 400 || m == nil || string(m[1]) != ErrCodeInvalidClient {
		t.Errorf("CIMD client with CIMD off: %d %s", resp.StatusCode, body)
	}
}

// Checklist 6, 8, 11: RFC 9728 metadata at the root and path-inserted URLs,
// each with the resource the go-sdk client expects for that URL.
func TestPRMetadata(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	for _, tc := range []struct{ path, resource string }{
		{PathPRMetadata, e.base},
		{PathPRMetadata + PathMCP, e.base + PathMCP},
		{PathPRMetadata + PathSSE, e.base + PathSSE},
	} {
		t.Run(tc.path, func(t *testing.T) {
			prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), e.base+tc.path, tc.resource, nil)
			if err != nil {
				t.Fatalf("go-sdk GetProtectedResourceMetadata: %v", err)
			}
			if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != e.base ||
				len(prm.BearerMethodsSupported) != 1 || prm.BearerMethodsSupported[0] != "header" ||
				prm.ResourceName == "" || len(prm.ScopesSupported) != 1 || prm.ScopesSupported[0] != DefaultScope {
				t.Errorf("metadata %+v", prm)
			}
			resp, _ := e.do("OPTIONS", tc.path, "", "", nil)
			if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("OPTIONS: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
			}
			resp, _ = e.do("POST", tc.path, "", "", nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST: %d, want 405", resp.StatusCode)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	key := make([]byte, 32)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{PublicURL: "http://localhost:8788", CookieKey: key}, true},
		{"trailing slash", Config{PublicURL: "https://toolgate.example/", CookieKey: key}, true},
		{"no url", Config{CookieKey: key}, false},
		{"path", Config{PublicURL: "https://x.example/base", CookieKey: key}, false},
		{"query", Config{PublicURL: "https://x.example?a=1", CookieKey: key}, false},
		{"ftp", Config{PublicURL: "ftp://x.example", CookieKey: key}, false},
		{"short key", Config{PublicURL: "https://x.example", CookieKey: key[:31]}, false},
		{"long code ttl", Config{PublicURL: "https://x.example", CookieKey: key, CodeTTL: 11 * 60e9}, false},
		{"refresh shorter than access", Config{PublicURL: "https://x.example", CookieKey: key, AccessTokenTTL: 2 * 3600e9, RefreshTokenTTL: 3600e9}, false},
		{"bad scope", Config{PublicURL: "https://x.example", CookieKey: key, Scopes: []string{"a b"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if (err == nil) != tt.ok {
				t.Errorf("withDefaults() error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}
