package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/toolgate/toolgate/core/store"
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
// of its id and redirect URIs: the cookie stays small however long the ids
// are (a CIMD client id is a URL of up to 1 KiB), and a client whose
// redirect URIs changed (a re-fetched metadata document) is asked about
// again.
func consentKey(c store.Client) string {
	h := sha256.New()
	writePart(h, c.ID)
	for _, u := range c.RedirectURIs {
		writePart(h, u)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
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

// hasConsent reports whether this browser approved client before (with
// the same redirect URIs).
func (s *Server) hasConsent(r *http.Request, browser string, client store.Client) bool {
	key := consentKey(client)
	for _, e := range s.readConsents(r, browser) {
		if e.clientKey == key {
			return true
		}
	}
	return false
}

// rememberConsent adds client to this browser's signed consent cookie.
func (s *Server) rememberConsent(w http.ResponseWriter, r *http.Request, browser string, client store.Client) {
	key := consentKey(client)
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
