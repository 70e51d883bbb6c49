package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// maxConsents bounds how many approved clients one consent cookie holds;
// the oldest approvals are dropped first.
const maxConsents = 20

// consentEntry is one remembered approval: a client (by consentKey) and
// when it lapses.
type consentEntry struct {
	clientKey string
	expires   int64
}

// consentKey names a client in the consent cookie by 128 bits of the hash
// of its id, so that the cookie stays small however long the ids are (a
// CIMD client id is a URL of up to 1 KiB).
func consentKey(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// readConsents returns the approvals in this browser's consent cookie,
// dropping the cookie entirely when its signature (over the browser id and
// the payload) does not verify.
func (s *Server) readConsents(r *http.Request, browser string) []consentEntry {
	c, err := r.Cookie(s.cookieName(cookieConsent))
	if err != nil || browser == "" {
		return nil
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !s.keys.verify(sig, "consent cookie", browser, payload) {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	now := s.cfg.Now().Unix()
	var out []consentEntry
	for _, item := range strings.Split(string(raw), ",") {
		id, exp, ok := strings.Cut(item, ":")
		n, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || id == "" || n < now {
			continue
		}
		out = append(out, consentEntry{clientKey: id, expires: n})
	}
	return out
}

// hasConsent reports whether this browser approved clientID before.
func (s *Server) hasConsent(r *http.Request, browser, clientID string) bool {
	key := consentKey(clientID)
	for _, e := range s.readConsents(r, browser) {
		if e.clientKey == key {
			return true
		}
	}
	return false
}

// rememberConsent adds clientID to this browser's signed consent cookie.
func (s *Server) rememberConsent(w http.ResponseWriter, r *http.Request, browser, clientID string) {
	key := consentKey(clientID)
	entries := []consentEntry{{clientKey: key, expires: s.cfg.Now().Add(s.cfg.ConsentTTL).Unix()}}
	for _, e := range s.readConsents(r, browser) {
		if e.clientKey != key && len(entries) < maxConsents {
			entries = append(entries, e)
		}
	}
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = e.clientKey + ":" + strconv.FormatInt(e.expires, 10)
	}
	payload := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ",")))
	s.setCookie(w, cookieConsent, payload+"."+s.keys.sign("consent cookie", browser, payload), s.cfg.ConsentTTL)
	// Keep the browser id alive as long as the consents signed with it.
	s.setCookie(w, cookieBrowser, browser, s.cfg.ConsentTTL)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
