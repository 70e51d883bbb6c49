package devauthkit

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEndSessions: ending a user's sessions refuses the refresh of every
// one of them and leaves other users' sessions alone.
func TestEndSessions(t *testing.T) {
	s := newTestServer(t, nil)
	verifier := strings.Repeat("e", 43)
	signIn := func(email string) string {
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
		return body["refresh_token"].(string)
	}
	refresh := func(rt string) (int, string) {
		status, body := authenticate(s, map[string]string{
			"client_id": s.ClientID(), "client_secret": s.APIKey(), "grant_type": "refresh_token", "refresh_token": rt,
		})
		next, _ := body["refresh_token"].(string)
		return status, next
	}
	bob1, bob2, alice := signIn("bob@example.com"), signIn("bob@example.com"), signIn("alice@example.com")
	// A refreshed session is still the same session: end it too.
	status, bob1 := refresh(bob1)
	if status != http.StatusOK {
		t.Fatalf("refresh before ending: %d", status)
	}

	if n, err := s.EndSessions("BOB@example.com"); err != nil || n != 2 {
		t.Fatalf("EndSessions(bob) = %d, %v; want 2 sessions", n, err)
	}
	for _, rt := range []string{bob1, bob2} {
		if status, _ := refresh(rt); status != http.StatusBadRequest {
			t.Errorf("refresh of an ended session = %d, want 400 invalid_grant", status)
		}
	}
	if status, _ := refresh(alice); status != http.StatusOK {
		t.Errorf("alice's refresh after ending bob's sessions = %d, want 200", status)
	}
	if n, err := s.EndSessions("bob@example.com"); err != nil || n != 0 {
		t.Errorf("EndSessions(bob) again = %d, %v; want 0", n, err)
	}
	if _, err := s.EndSessions("nobody@example.com"); err == nil {
		t.Error("EndSessions of an unknown user: no error")
	}
}
