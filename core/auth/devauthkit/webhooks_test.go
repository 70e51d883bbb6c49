package devauthkit

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
)

// webhookSink is a loopback endpoint that verifies deliveries with
// workos-go (through authkit) and records their events.
type webhookSink struct {
	t      *testing.T
	ts     *httptest.Server
	v      *authkit.WebhookVerifier
	mu     sync.Mutex
	events []authkit.WebhookEvent
	status int // answered to every delivery; 0 means 200
}

func newWebhookSink(t *testing.T, secret string) *webhookSink {
	v, err := authkit.NewWebhookVerifier(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &webhookSink{t: t, v: v}
	k.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := k.v.VerifyWebhook(r.Header.Get(authkit.WebhookSignatureHeader), body)
		if err != nil {
			t.Errorf("delivery does not verify with workos-go: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		k.events = append(k.events, ev)
		if k.status != 0 {
			w.WriteHeader(k.status)
		}
	}))
	t.Cleanup(k.ts.Close)
	return k
}

// take returns and forgets the events received so far.
func (k *webhookSink) take() []authkit.WebhookEvent {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.events
	k.events = nil
	return out
}

// TestWebhookDelivery: ending sessions (EndSessions, the revoke API, sign
// out) and editing a role's permissions deliver WorkOS-signed events that
// workos-go verifies, before the call returns; a failed delivery is an
// error of EndSessions and SetPermissions; delivery can be turned off.
func TestWebhookDelivery(t *testing.T) {
	const secret = "whsec_dev_test"
	sink := newWebhookSink(t, secret)
	s := newTestServer(t, func(c *Config) { c.WebhookURL = sink.ts.URL + "/webhooks/workos"; c.WebhookSecret = secret })
	verifier := strings.Repeat("w", 43)
	signIn := func(email string) map[string]any {
		t.Helper()
		rec := login(t, s, authorizeQuery(s, challengeOf(verifier)), email)
		loc, _ := url.Parse(rec.Header().Get("Location"))
		status, body := authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "authorization_code",
			"code": loc.Query().Get("code"), "code_verifier": verifier,
		})
		if status != http.StatusOK {
			t.Fatalf("sign in %s: %d %v", email, status, body)
		}
		return body
	}
	bobID, orgID, _ := s.IDs("bob@example.com")
	signIn("bob@example.com")
	signIn("bob@example.com")
	if n, err := s.EndSessions("bob@example.com"); err != nil || n != 2 {
		t.Fatalf("EndSessions = %d, %v", n, err)
	}
	evs := sink.take()
	if len(evs) != 2 || evs[0].ObjectID == evs[1].ObjectID {
		t.Fatalf("EndSessions delivered %+v, want two session.revoked for two sessions", evs)
	}
	for _, ev := range evs {
		if ev.Type != authkit.EventSessionRevoked || ev.ObjectID == "" || ev.UserID != bobID || ev.OrganizationID != orgID || ev.ID == "" || ev.CreatedAt.IsZero() {
			t.Errorf("event %+v, want session.revoked of bob (%s, %s)", ev, bobID, orgID)
		}
	}

	// The revoke-session API, as toolgate's admin endpoint calls it.
	signIn("alice@example.com")
	var sid string
	s.mu.Lock()
	for id := range s.sessions {
		sid = id
	}
	s.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, "/user_management/sessions/revoke", strings.NewReader(`{"session_id":"`+sid+`"}`))
	req.Header.Set("Authorization", "Bearer "+s.APIKey())
	req.RemoteAddr = "127.0.0.1:5555"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("revoke session: %d %s", rec.Code, rec.Body)
	}
	if evs := sink.take(); len(evs) != 1 || evs[0].Type != authkit.EventSessionRevoked || evs[0].ObjectID != sid {
		t.Errorf("the revoke API delivered %+v, want session.revoked of %s", evs, sid)
	}

	if err := s.SetPermissions("alice@example.com", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	_, aliceOrg, _ := s.IDs("alice@example.com")
	if evs := sink.take(); len(evs) != 1 || evs[0].Type != authkit.EventOrganizationRoleUpdated || evs[0].Slug != "admin" || evs[0].OrganizationID != aliceOrg {
		t.Errorf("SetPermissions delivered %+v, want organization_role.updated of admin in %s", evs, aliceOrg)
	}

	// A failing endpoint: the change is made, the failure reported.
	sink.mu.Lock()
	sink.status = http.StatusInternalServerError
	sink.mu.Unlock()
	signIn("bob@example.com")
	if n, err := s.EndSessions("bob@example.com"); n != 1 || err == nil {
		t.Errorf("EndSessions with a failing endpoint = %d, %v; want 1 and an error", n, err)
	}
	if err := s.SetPermissions("bob@example.com", nil); err == nil {
		t.Error("SetPermissions with a failing endpoint: no error")
	}
	sink.take()

	s.SetWebhookDelivery(false)
	signIn("bob@example.com")
	if n, err := s.EndSessions("bob@example.com"); n != 1 || err != nil {
		t.Errorf("EndSessions with delivery off = %d, %v", n, err)
	}
	if evs := sink.take(); len(evs) != 0 {
		t.Errorf("delivered %+v with delivery off", evs)
	}
}

// TestWebhookConfig: a webhook URL must be loopback and comes with a
// secret.
func TestWebhookConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"not loopback": {WebhookURL: "https://example.com/webhooks/workos", WebhookSecret: "s"},
		"no secret":    {WebhookURL: "http://127.0.0.1:1/webhooks/workos"},
		"not a URL":    {WebhookURL: "::", WebhookSecret: "s"},
	} {
		if _, err := newWebhookTarget(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b, _ := json.Marshal(map[string]string{"a": "b"})
	if got := SignWebhook("k", b, time.UnixMilli(0)); !strings.HasPrefix(got, "t=0, v1=") || len(got) != len("t=0, v1=")+64 {
		t.Errorf("SignWebhook = %q", got)
	}
}
