package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/store"
)

const testWebhookSecret = "whsec_test_0123456789"

// webhookEnv is a testEnv whose store never announces changes (so only
// the handler's own Invalidate can drop cached tokens) with the webhook
// handler in front.
type webhookEnv struct {
	*testEnv
	h      http.Handler
	failKV error // when set, the store's KVGet fails with it
}

type failingKVStore struct {
	watchStore
	env *webhookEnv
}

func (s *failingKVStore) KVGet(ctx context.Context, plugin, key string) ([]byte, error) {
	if s.env.failKV != nil {
		return nil, s.env.failKV
	}
	return s.watchStore.KVGet(ctx, plugin, key)
}

func newWebhookEnv(t *testing.T) *webhookEnv {
	t.Helper()
	we := &webhookEnv{}
	fs := &failingKVStore{env: we}
	wrapStore = func(s store.Store) store.Store { fs.Store = s; return fs }
	defer func() { wrapStore = nil }()
	we.testEnv = newTestEnv(t, nil, nil)
	v, err := authkit.NewWebhookVerifier(testWebhookSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	we.h = we.auth.WebhookHandler(v)
	return we
}

// deliver posts a signed event and returns the response.
func (e *webhookEnv) deliver(id, typ string, data map[string]any) *httptest.ResponseRecorder {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"object": "event", "id": id, "event": typ, "data": data, "created_at": time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(devauthkit.SignWebhook(testWebhookSecret, body, time.Now()), body)
}

func (e *webhookEnv) post(sig string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, PathWorkOSWebhook, strings.NewReader(string(body)))
	if sig != "" {
		req.Header.Set(authkit.WebhookSignatureHeader, sig)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// session is one signed-in client of a user, its first tokens warmed into
// the bearer cache.
type whSession struct {
	client registered
	tk     tokens
	grant  store.Grant
}

func (e *webhookEnv) session(user string) whSession {
	e.t.Helper()
	c, tk := e.signIn(user)
	status, caller, _ := e.callMCP(tk.AccessToken) // cached from here on
	if status != http.StatusOK {
		e.t.Fatalf("fresh token of %s: %d", user, status)
	}
	g, err := e.st.GetGrant(context.Background(), caller.GrantID)
	if err != nil {
		e.t.Fatal(err)
	}
	return whSession{client: c, tk: tk, grant: g}
}

func (e *webhookEnv) expectStatus(s whSession, want int, what string) {
	e.t.Helper()
	if status, _, _ := e.callMCP(s.tk.AccessToken); status != want {
		e.t.Errorf("%s: request = %d, want %d", what, status, want)
	}
}

func mustAnswer(t *testing.T, rec *httptest.ResponseRecorder, want int, what string) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("%s: webhook answered %d %s, want %d", what, rec.Code, rec.Body, want)
	}
}

// TestWebhookEndsSessionsAndUsers: session.revoked ends the grants of that
// AuthKit session and user.deleted every grant of the user; the very next
// request with their tokens is refused although the tokens were cached
// and the store announces nothing, and other grants go on.
func TestWebhookEndsSessionsAndUsers(t *testing.T) {
	e := newWebhookEnv(t)
	a1, a2, bob := e.session("alice@example.com"), e.session("alice@example.com"), e.session("bob@example.com")
	if a1.grant.UpstreamSessionID == "" || a1.grant.UpstreamSessionID == a2.grant.UpstreamSessionID {
		t.Fatalf("sessions %q and %q: want two distinct AuthKit sessions", a1.grant.UpstreamSessionID, a2.grant.UpstreamSessionID)
	}

	mustAnswer(t, e.deliver("event_1", authkit.EventSessionRevoked, map[string]any{
		"object": "session", "id": a1.grant.UpstreamSessionID, "user_id": a1.grant.UserID,
	}), http.StatusOK, "session.revoked")
	e.expectStatus(a1, http.StatusUnauthorized, "token of the revoked session")
	e.expectStatus(a2, http.StatusOK, "alice's other session")
	e.expectStatus(bob, http.StatusOK, "bob")
	if status, _ := e.refreshWith(a1.client.ClientID, a1.tk.RefreshToken); status != http.StatusBadRequest {
		t.Errorf("refresh of the revoked session's grant = %d, want 400", status)
	}

	// Without user_id every grant is searched for the session.
	mustAnswer(t, e.deliver("event_2", authkit.EventSessionRevoked, map[string]any{"id": a2.grant.UpstreamSessionID}), http.StatusOK, "session.revoked without user")
	e.expectStatus(a2, http.StatusUnauthorized, "token of the session revoked without user_id")

	b2 := e.session("bob@example.com")
	mustAnswer(t, e.deliver("event_3", authkit.EventUserDeleted, map[string]any{"object": "user", "id": bob.grant.UserID}), http.StatusOK, "user.deleted")
	e.expectStatus(bob, http.StatusUnauthorized, "deleted user's first token")
	e.expectStatus(b2, http.StatusUnauthorized, "deleted user's second token")
	if gs, err := e.st.ListGrants(context.Background(), store.GrantFilter{UserID: bob.grant.UserID}); err != nil || len(gs) != 0 {
		t.Errorf("bob's grants after user.deleted: %d, %v", len(gs), err)
	}
}

// TestWebhookMarksStale: membership, role and permission changes make the
// affected grants' access tokens refused on the next request while their
// refresh tokens work, and the refreshed tokens carry on; a membership
// that is deleted or no longer active ends the grants; unaffected grants
// are untouched.
func TestWebhookMarksStale(t *testing.T) {
	e := newWebhookEnv(t)
	alice, bob := e.session("alice@example.com"), e.session("bob@example.com")
	org := alice.grant.OrganizationID
	if org == "" || alice.grant.Role != "admin" || bob.grant.Role != "member" {
		t.Fatalf("dev users: alice %+v, bob %+v", alice.grant, bob.grant)
	}
	refreshed := func(s whSession, what string) whSession {
		t.Helper()
		status, tk := e.refreshWith(s.client.ClientID, s.tk.RefreshToken)
		if status != http.StatusOK {
			t.Fatalf("%s: refresh = %d %+v", what, status, tk)
		}
		s.tk = tk
		e.expectStatus(s, http.StatusOK, what+": refreshed token")
		return s
	}
	steps := []struct {
		typ  string
		data map[string]any
	}{
		{authkit.EventMembershipUpdated, map[string]any{"object": "organization_membership", "user_id": alice.grant.UserID, "organization_id": org, "status": "active", "role": map[string]any{"slug": "member"}}},
		{authkit.EventRoleUpdated, map[string]any{"object": "role", "slug": "admin", "permissions": []string{}}},
		{authkit.EventOrganizationRoleUpdated, map[string]any{"object": "role", "slug": "admin", "organization_id": org}},
		{authkit.EventPermissionDeleted, map[string]any{"object": "permission", "slug": "image_generation"}},
	}
	for _, st := range steps {
		mustAnswer(t, e.deliver("event_stale_"+st.typ, st.typ, st.data), http.StatusOK, st.typ)
		e.expectStatus(alice, http.StatusUnauthorized, st.typ+": alice's token")
		e.expectStatus(bob, http.StatusOK, st.typ+": bob's token")
		alice = refreshed(alice, st.typ)
	}
	// A redelivery of a handled event does nothing: alice's new token lives.
	mustAnswer(t, e.deliver("event_stale_"+authkit.EventRoleUpdated, authkit.EventRoleUpdated, steps[1].data), http.StatusOK, "redelivered role.updated")
	e.expectStatus(alice, http.StatusOK, "alice after a redelivered event")

	// Another organization's role of the same slug concerns nobody here.
	mustAnswer(t, e.deliver("event_other_org", authkit.EventOrganizationRoleUpdated, map[string]any{"slug": "admin", "organization_id": "org_other"}), http.StatusOK, "other org")
	e.expectStatus(alice, http.StatusOK, "alice after another organization's role change")

	mustAnswer(t, e.deliver("event_inactive", authkit.EventMembershipUpdated, map[string]any{"user_id": bob.grant.UserID, "organization_id": org, "status": "inactive"}), http.StatusOK, "inactive membership")
	e.expectStatus(bob, http.StatusUnauthorized, "bob after his membership went inactive")
	if status, _ := e.refreshWith(bob.client.ClientID, bob.tk.RefreshToken); status != http.StatusBadRequest {
		t.Errorf("bob's refresh after his membership went inactive = %d, want 400 (grant ended)", status)
	}
	mustAnswer(t, e.deliver("event_deleted", authkit.EventMembershipDeleted, map[string]any{"user_id": alice.grant.UserID, "organization_id": org}), http.StatusOK, "membership deleted")
	e.expectStatus(alice, http.StatusUnauthorized, "alice after her membership was deleted")
	if status, _ := e.refreshWith(alice.client.ClientID, alice.tk.RefreshToken); status != http.StatusBadRequest {
		t.Errorf("alice's refresh after her membership was deleted = %d, want 400 (grant ended)", status)
	}
}

// TestWebhookDeliveries: what the endpoint answers to deliveries that are
// not correctly signed, too large, not events, of unknown types, or that
// cannot be applied; none of them changes anything, and refusals say
// nothing about why.
func TestWebhookDeliveries(t *testing.T) {
	e := newWebhookEnv(t)
	alice := e.session("alice@example.com")
	revoke, _ := json.Marshal(map[string]any{"id": "event_x", "event": authkit.EventSessionRevoked, "data": map[string]any{"id": alice.grant.UpstreamSessionID, "user_id": alice.grant.UserID}})
	now := time.Now()
	good := devauthkit.SignWebhook(testWebhookSecret, revoke, now)
	big := make([]byte, authkit.MaxWebhookBody+1)
	for i := range big {
		big[i] = ' '
	}
	for _, tc := range []struct {
		name string
		sig  string
		body []byte
		want int
	}{
		{"no signature", "", revoke, http.StatusUnauthorized},
		{"wrong secret", devauthkit.SignWebhook("whsec_other", revoke, now), revoke, http.StatusUnauthorized},
		{"body changed", good, append([]byte(" "), revoke...), http.StatusUnauthorized},
		{"stale timestamp", devauthkit.SignWebhook(testWebhookSecret, revoke, now.Add(-authkit.WebhookTolerance-time.Minute)), revoke, http.StatusUnauthorized},
		{"future timestamp", devauthkit.SignWebhook(testWebhookSecret, revoke, now.Add(authkit.WebhookTolerance+time.Minute)), revoke, http.StatusUnauthorized},
		{"malformed header", "a,b", revoke, http.StatusUnauthorized},
		{"uppercase signature", strings.ToUpper(good[:2]) + good[2:len(good)-64] + strings.ToUpper(good[len(good)-64:]), revoke, http.StatusUnauthorized},
		{"oversized", devauthkit.SignWebhook(testWebhookSecret, big, now), big, http.StatusRequestEntityTooLarge},
		{"signed but not JSON", devauthkit.SignWebhook(testWebhookSecret, []byte("nope"), now), []byte("nope"), http.StatusBadRequest},
		{"signed but no id", devauthkit.SignWebhook(testWebhookSecret, []byte(`{"event":"user.deleted"}`), now), []byte(`{"event":"user.deleted"}`), http.StatusBadRequest},
		{"unknown event", devauthkit.SignWebhook(testWebhookSecret, []byte(`{"id":"event_u","event":"dsync.user.created","data":{"id":"x"}}`), now), []byte(`{"id":"event_u","event":"dsync.user.created","data":{"id":"x"}}`), http.StatusOK},
		{"known event without its fields", devauthkit.SignWebhook(testWebhookSecret, []byte(`{"id":"event_e","event":"session.revoked","data":{}}`), now), []byte(`{"id":"event_e","event":"session.revoked","data":{}}`), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.post(tc.sig, tc.body)
			if rec.Code != tc.want {
				t.Fatalf("answered %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.want == http.StatusUnauthorized && strings.TrimSpace(rec.Body.String()) != `{"error":"invalid_signature"}` {
				t.Errorf("refusal body %s says more than invalid_signature", rec.Body)
			}
			e.expectStatus(alice, http.StatusOK, "alice after a delivery that changes nothing")
		})
	}

	get := httptest.NewRequest(http.MethodGet, PathWorkOSWebhook, nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, get)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", rec.Code)
	}

	// A store failure is a 500, so WorkOS delivers again; the redelivery
	// applies.
	e.failKV = errors.New("disk on fire")
	mustAnswer(t, e.post(good, revoke), http.StatusInternalServerError, "store failing")
	e.expectStatus(alice, http.StatusOK, "alice after a failed delivery")
	if strings.Contains(e.logs.String(), testWebhookSecret) {
		t.Error("the webhook secret reached the logs")
	}
	e.failKV = nil
	mustAnswer(t, e.post(good, revoke), http.StatusOK, "redelivery")
	e.expectStatus(alice, http.StatusUnauthorized, "alice after the redelivery")
	mustAnswer(t, e.post(good, revoke), http.StatusOK, "replayed delivery")
}

// TestWebhookRefusalsLogSampled: a flood of unsigned deliveries is refused
// every time, but only a burst of them is logged at Warn; the rest go to
// Debug, so nobody can fill the operator's log through the endpoint.
func TestWebhookRefusalsLogSampled(t *testing.T) {
	e := newWebhookEnv(t)
	const flood = 40
	for i := range flood {
		if rec := e.post("", []byte(`{"id":"event_f","event":"user.deleted","data":{"id":"u"}}`)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("delivery %d answered %d, want 401", i, rec.Code)
		}
	}
	var warn, debug int
	for line := range strings.SplitSeq(e.logs.String(), "\n") {
		if !strings.Contains(line, "webhook delivery refused") {
			continue
		}
		switch {
		case strings.Contains(line, "level=WARN"):
			warn++
		case strings.Contains(line, "level=DEBUG"):
			debug++
		}
	}
	// The bucket holds refusedWebhookBurst lines and refills one every 10 s;
	// a slow machine may see one more.
	if warn < 1 || warn > refusedWebhookBurst+1 {
		t.Errorf("%d refusals logged at Warn, want 1 to %d", warn, refusedWebhookBurst+1)
	}
	if warn+debug != flood {
		t.Errorf("%d Warn + %d Debug lines, want %d refusals logged in all", warn, debug, flood)
	}
}
