package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
)

type forgettingPerms struct {
	fakePerms
	forgot int
}

func (f *forgettingPerms) ForgetPermissions() { f.forgot++ }

// TestResourceServerWebhook: in resource-server mode a WorkOS event refuses
// the AuthKit tokens it concerns from the next request on (even cached
// ones), tokens issued after it are served, other tokens are untouched,
// and membership changes empty the permission cache.
func TestResourceServerWebhook(t *testing.T) {
	d := newAuthKitDomain(t)
	issuer := "https://example.authkit.app"
	up, err := authkit.New(authkit.Config{ClientID: "client_x", APIKey: "sk_test", Issuer: issuer, JWKSURL: d.ts.URL + "/oauth2/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://mcp.example.com"
	now := time.Now()
	clock := now
	perms := &forgettingPerms{}
	rs, err := NewResourceServer(ResourceServerConfig{PublicURL: base, AuthorizationServer: issuer, Permissions: perms, Now: func() time.Time { return clock }}, up)
	if err != nil {
		t.Fatal(err)
	}
	protected := rs.Protect(PathMCP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	v, err := authkit.NewWebhookVerifier(testWebhookSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	hook := rs.WebhookHandler(v)
	token := func(sub, sid, role string, iat time.Time, permissions ...string) string {
		return d.sign(map[string]any{"iss": issuer, "sub": sub, "aud": base + PathMCP, "exp": now.Add(time.Hour).Unix(), "iat": iat.Unix(),
			"sid": sid, "org_id": "org_1", "role": role, "permissions": permissions})
	}
	call := func(tok string) int {
		req := httptest.NewRequest(http.MethodPost, PathMCP, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		protected.ServeHTTP(rec, req)
		return rec.Code
	}
	deliver := func(typ string, data map[string]any) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"id": "event_" + typ, "event": typ, "data": data, "created_at": clock.UTC().Format(time.RFC3339Nano)})
		req := httptest.NewRequest(http.MethodPost, PathWorkOSWebhook, strings.NewReader(string(body)))
		req.Header.Set(authkit.WebhookSignatureHeader, devauthkit.SignWebhook(testWebhookSecret, body, time.Now()))
		rec := httptest.NewRecorder()
		hook.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", typ, rec.Code, rec.Body)
		}
	}
	early := now.Add(-time.Minute)
	alice := token("user_a", "session_a", "admin", early, "image_generation")
	alice2 := token("user_a", "session_a2", "admin", early, "image_generation")
	bob := token("user_b", "session_b", "member", early)
	carol := token("user_c", "session_c", "member", early, "reports")
	for _, tok := range []string{alice, alice2, bob, carol} {
		if code := call(tok); code != http.StatusOK {
			t.Fatalf("fresh token: %d", code) // and cached from here on
		}
	}

	deliver(authkit.EventSessionRevoked, map[string]any{"id": "session_a", "user_id": "user_a"})
	if call(alice) != http.StatusUnauthorized || call(alice2) != http.StatusOK {
		t.Errorf("after session.revoked: revoked session %d, other session %d; want 401, 200", call(alice), call(alice2))
	}
	if perms.forgot != 0 {
		t.Error("session.revoked emptied the permission cache")
	}

	clock = now.Add(2 * time.Second)
	deliver(authkit.EventMembershipUpdated, map[string]any{"user_id": "user_b", "organization_id": "org_1", "status": "active"})
	if call(bob) != http.StatusUnauthorized || perms.forgot != 1 {
		t.Errorf("after membership.updated: bob %d (want 401), permission cache emptied %d times (want 1)", call(bob), perms.forgot)
	}
	if code := call(token("user_b", "session_b", "member", clock.Add(time.Second))); code != http.StatusOK {
		t.Errorf("bob's token issued after the event: %d, want 200", code)
	}

	deliver(authkit.EventPermissionDeleted, map[string]any{"slug": "reports"})
	deliver(authkit.EventRoleUpdated, map[string]any{"slug": "admin"})
	if call(carol) != http.StatusUnauthorized || call(alice2) != http.StatusUnauthorized {
		t.Errorf("after permission and role events: carol %d, alice %d; want 401", call(carol), call(alice2))
	}
	deliver(authkit.EventUserDeleted, map[string]any{"id": "user_b"})
	if code := call(token("user_b", "session_b", "member", clock)); code != http.StatusUnauthorized {
		t.Errorf("deleted user's token issued in the event's second: %d, want 401", code)
	}
	if code := call(token("user_d", "session_d", "member", early)); code != http.StatusOK {
		t.Errorf("an unconcerned user: %d, want 200", code)
	}
}
