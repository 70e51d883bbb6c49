package authkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testWebhookSecret = "whsec_0123456789abcdef"

// signWebhook signs body at t the way WorkOS does (and workos-go's own
// tests do): t is Unix milliseconds.
func signWebhook(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	return "t=" + ts + ", v1=" + hex.EncodeToString(mac.Sum(nil))
}

func fixedVerifier(t testing.TB, now time.Time) *WebhookVerifier {
	t.Helper()
	v, err := NewWebhookVerifier(testWebhookSecret, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := fixedVerifier(t, now)
	session := []byte(`{"object":"event","id":"event_01","event":"session.revoked","created_at":"2027-01-15T08:00:00.123Z",` +
		`"data":{"object":"session","id":"session_01","user_id":"user_01","organization_id":"org_01","status":"revoked"}}`)
	ev, err := v.VerifyWebhook(signWebhook(testWebhookSecret, session, now), session)
	if err != nil {
		t.Fatal(err)
	}
	want := WebhookEvent{ID: "event_01", Type: EventSessionRevoked, ObjectID: "session_01", UserID: "user_01", OrganizationID: "org_01", Status: "revoked",
		CreatedAt: time.Date(2027, 1, 15, 8, 0, 0, 123e6, time.UTC)}
	if ev != want {
		t.Errorf("event = %+v\nwant %+v", ev, want)
	}

	decode := func(body string) WebhookEvent {
		t.Helper()
		ev, err := v.VerifyWebhook(signWebhook(testWebhookSecret, []byte(body), now), []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return ev
	}
	if ev := decode(`{"id":"e","event":"user.deleted","data":{"object":"user","id":"user_9"}}`); ev.UserID != "user_9" {
		t.Errorf("user.deleted: user %q, want data.id", ev.UserID)
	}
	if ev := decode(`{"id":"e","event":"organization_membership.updated","data":{"id":"om_1","user_id":"u","organization_id":"o","status":"active","role":{"slug":"member"}}}`); ev.Slug != "member" || ev.Status != "active" {
		t.Errorf("membership: %+v, want role slug and status", ev)
	}
	if ev := decode(`{"id":"e","event":"role.updated","data":{"slug":"admin","permissions":["a"]}}`); ev.Slug != "admin" {
		t.Errorf("role: %+v", ev)
	}

	for _, tc := range []struct {
		name   string
		header string
		body   string
		want   error
	}{
		{"no header", "", string(session), ErrWebhookSignature},
		{"wrong secret", signWebhook("whsec_other", session, now), string(session), ErrWebhookSignature},
		{"tampered body", signWebhook(testWebhookSecret, session, now), strings.Replace(string(session), "session_01", "session_02", 1), ErrWebhookSignature},
		{"too old", signWebhook(testWebhookSecret, session, now.Add(-WebhookTolerance-time.Second)), string(session), ErrWebhookSignature},
		{"too far ahead", signWebhook(testWebhookSecret, session, now.Add(WebhookTolerance+time.Second)), string(session), ErrWebhookSignature},
		{"no space", strings.Replace(signWebhook(testWebhookSecret, session, now), ", ", ",", 1), string(session), ErrWebhookSignature},
		{"v0", strings.Replace(signWebhook(testWebhookSecret, session, now), "v1=", "v0=", 1), string(session), ErrWebhookSignature},
		{"short", "t,v", string(session), ErrWebhookSignature},
		{"three parts", "t=1, v1=ab, v1=cd", string(session), ErrWebhookSignature},
		{"not json", "", "", ErrWebhookSignature},
		{"trailing data", signWebhook(testWebhookSecret, []byte(`{"id":"e","event":"x"} {}`), now), `{"id":"e","event":"x"} {}`, ErrWebhookPayload},
		{"no type", signWebhook(testWebhookSecret, []byte(`{"id":"e"}`), now), `{"id":"e"}`, ErrWebhookPayload},
		{"bad created_at", signWebhook(testWebhookSecret, []byte(`{"id":"e","event":"x","created_at":"yesterday"}`), now), `{"id":"e","event":"x","created_at":"yesterday"}`, ErrWebhookPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.VerifyWebhook(tc.header, []byte(tc.body)); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	big := make([]byte, MaxWebhookBody+1)
	if _, err := v.VerifyWebhook(signWebhook(testWebhookSecret, big, now), big); !errors.Is(err, ErrWebhookPayload) {
		t.Errorf("oversized body: %v", err)
	}
	if _, err := NewWebhookVerifier("", nil); err == nil {
		t.Error("empty secret accepted")
	}
}

// FuzzVerifyWebhook: no header or body panics the verifier (workos-go's
// header parser indexes without bounds checks, so the shape is checked
// first), every refusal wraps one of the two sentinels, and whatever is
// accepted was signed with the secret.
func FuzzVerifyWebhook(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := `{"id":"event_1","event":"session.revoked","data":{"id":"session_1","user_id":"user_1"}}`
	f.Add(signWebhook(testWebhookSecret, []byte(body), now), body)
	f.Add(signWebhook(testWebhookSecret, []byte(`{"id":"e","event":"organization_membership.updated","data":{"role":{"slug":"a"}}}`), now), `{"id":"e","event":"organization_membership.updated","data":{"role":{"slug":"a"}}}`)
	f.Add("t=1, v1=", body)
	f.Add("a,b", body)
	f.Add("t=, v1=00", "")
	v := fixedVerifier(f, now)
	f.Fuzz(func(t *testing.T, header, body string) {
		ev, err := v.VerifyWebhook(header, []byte(body))
		if err != nil {
			if !errors.Is(err, ErrWebhookSignature) && !errors.Is(err, ErrWebhookPayload) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(header, "t="), ",")
		ms, _ := strconv.ParseInt(ts, 10, 64)
		if header != signWebhook(testWebhookSecret, []byte(body), time.UnixMilli(ms)) {
			t.Fatalf("accepted header %q that is not the signature of the body", header)
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("accepted event without id or type: %+v", ev)
		}
	})
}
