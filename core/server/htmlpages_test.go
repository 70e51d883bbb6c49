package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/toolgate/toolgate/core/auth/devauthkit"
)

// htmlResponse is one HTML response the server gave.
type htmlResponse struct {
	method, path string
	status       int
	header       http.Header
	body         string
}

// htmlRecorder sits in front of the whole server and keeps every response
// whose Content-Type is HTML, declared or sniffed. /mcp and /sse stream
// and never serve HTML, so they pass straight through.
type htmlRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []htmlResponse
}

func (h *htmlRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PathMCP || r.URL.Path == PathSSE {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder() // sniffs a missing Content-Type as net/http does
	h.next.ServeHTTP(rec, r)
	res := rec.Result()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		h.mu.Lock()
		h.seen = append(h.seen, htmlResponse{r.Method, r.URL.Path, res.StatusCode, res.Header.Clone(), rec.Body.String()})
		h.mu.Unlock()
	}
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(rec.Body.Bytes())
}

// TestSecurityHeadersOnEveryHTMLPage drives the composed development
// server through a sign-in and every error page a browser can reach (our
// consent and error pages, the development AuthKit's login, error and
// signed-out pages, redirects) and checks that every response served as
// HTML carries the page security headers.
func TestSecurityHeadersOnEveryHTMLPage(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store.SyncWrites = false
	rec := &htmlRecorder{}
	s := startBadgerServer(t, cfg, testLogger(t), func(next http.Handler) http.Handler {
		rec.next = next
		return rec
	})
	public := s.cfg.Server.PublicURL
	secrets := &secretSet{} // unused here; the flow helpers record into it

	// A whole sign-in (consent page, login page, redirects), then another
	// in the same browser, where the remembered consent redirects at once.
	c := registerClient(t, public, false, secrets)
	b := newFlowBrowser(t, "alice@example.com", secrets)
	c.signInWith(b)
	c.signInWith(b)

	dev := public + devauthkit.MountPath
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	visit := func(method, target string, form url.Values) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, target, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// No index page: what a browser opening the server sees.
	visit("GET", public+"/", nil)
	visit("GET", public+"/favicon.ico", nil)
	// Our error pages: unknown client, bad redirect URI, a consent form
	// without its CSRF token, a callback without state.
	visit("GET", public+"/authorize?client_id=nope&response_type=code", nil)
	visit("GET", public+"/authorize?"+url.Values{"client_id": {c.id}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"code"}}.Encode(), nil)
	visit("POST", public+"/authorize", url.Values{"request": {"x"}, "action": {"approve"}})
	visit("GET", public+"/callback", nil)
	// The development AuthKit: its error page, a login without a valid
	// form, the signed-out page and its redirect back.
	visit("GET", dev+"/user_management/authorize", nil)
	visit("POST", dev+"/user_management/authorize", url.Values{"login_id": {"nope"}, "email": {"alice@example.com"}})
	visit("GET", dev+"/user_management/sessions/logout", nil)
	visit("GET", dev+"/user_management/sessions/logout?session_id=nope", nil)
	visit("GET", dev+"/user_management/sessions/logout?"+url.Values{"session_id": {"nope"}, "return_to": {public + "/"}}.Encode(), nil)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	kinds := map[string]bool{}
	for _, r := range rec.seen {
		where := r.method + " " + r.path
		if r.status >= 300 && r.status < 400 {
			kinds["redirect "+where] = true
		}
		switch {
		case strings.Contains(r.body, `name="action" value="approve"`):
			kinds["consent page"] = true
		case strings.Contains(r.body, "Authorization error"):
			kinds["error page"] = true
		case strings.Contains(r.body, `name="login_id"`):
			kinds["login page"] = true
		case strings.Contains(r.body, "signed out"):
			kinds["signed-out page"] = true
		case strings.HasPrefix(r.path, devauthkit.MountPath) && r.status >= 400:
			kinds["development AuthKit error page"] = true
		}
		h := r.header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s (%d): Content-Security-Policy %q, want default-src 'none' and frame-ancestors 'none'", where, r.status, csp)
		}
		for name, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s (%d): %s = %q, want %q", where, r.status, name, got, want)
			}
		}
	}
	for _, kind := range []string{
		"consent page", "error page", "login page", "signed-out page", "development AuthKit error page",
		"redirect GET /authorize", "redirect GET /callback", "redirect GET " + devauthkit.MountPath + "/user_management/sessions/logout",
	} {
		if !kinds[kind] {
			t.Errorf("the walk saw no %s; HTML responses seen: %d", kind, len(rec.seen))
		}
	}
	t.Logf("checked %d HTML responses", len(rec.seen))
}
