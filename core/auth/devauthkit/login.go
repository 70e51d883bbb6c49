package devauthkit

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

const (
	// browserCookie binds a rendered login page to the browser that asked
	// for it (double-submit CSRF defence, in addition to the form token).
	browserCookie = "devauthkit_browser"
	// maxLoginForm caps the login form body.
	maxLoginForm = 8 << 10
)

// pkceChallenge matches a S256 code challenge: 32 bytes, base64url, no padding.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in (development AuthKit)</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
.warn{background:#fff4ce;border:1px solid #e0b400;padding:.75rem;border-radius:6px}
form button{display:block;width:100%;margin:.5rem 0;padding:.75rem;font-size:1rem;text-align:left;cursor:pointer;border:1px solid #888;border-radius:6px;background:#fafafa}
small{color:#555}
</style>
</head>
<body>
<h1>Sign in</h1>
<p class="warn"><strong>Development AuthKit.</strong> This is not WorkOS: anyone who can reach this page can sign in as any user below. Configure WORKOS_CLIENT_ID for real sign-in.</p>
<form method="post" action="authorize">
<input type="hidden" name="login_id" value="{{.LoginID}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
{{range .Users}}<button type="submit" name="email" value="{{.Email}}">{{.Email}}<br><small>{{.Role}}{{with .Organization}} · {{.}}{{end}}{{if .Permissions}} · {{range $i, $p := .Permissions}}{{if $i}}, {{end}}{{$p}}{{end}}{{end}}</small></button>
{{end}}</form>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign-in error (development AuthKit)</title></head>
<body>
<h1>Sign-in error</h1>
<p>{{.}}</p>
</body>
</html>
`))

// handleAuthorize validates the authorization request and renders the login
// page with one button per dev user.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirectURI := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != s.clientID:
		s.pageError(w, http.StatusBadRequest, "Invalid client_id.")
		return
	case !slices.Contains(s.redirectURIs, redirectURI):
		s.pageError(w, http.StatusBadRequest, "Invalid redirect_uri: it is not one of the configured redirect URIs.")
		return
	case q.Get("response_type") != "code":
		s.pageError(w, http.StatusBadRequest, "Invalid response_type: only \"code\" is supported.")
		return
	case q.Get("provider") != "authkit" || q.Has("connection_id") || q.Has("organization_id"):
		s.pageError(w, http.StatusBadRequest, "Invalid connection selector: only provider=authkit is supported.")
		return
	case q.Get("code_challenge_method") != "S256" || !pkceChallenge.MatchString(q.Get("code_challenge")):
		s.pageError(w, http.StatusBadRequest, "PKCE is required: code_challenge_method must be S256 with a 43-character code_challenge.")
		return
	}

	browser := ""
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 128 {
		browser = c.Value
	} else {
		browser = randomToken()
		http.SetCookie(w, &http.Cookie{
			Name:     browserCookie,
			Value:    browser,
			HttpOnly: true,
			Secure:   r.TLS != nil,
			SameSite: http.SameSiteStrictMode,
		})
	}

	loginID, csrf := randomToken(), randomToken()
	now := s.now()
	s.mu.Lock()
	s.sweepLocked(now)
	if len(s.pending) >= maxPending {
		s.mu.Unlock()
		s.pageError(w, http.StatusTooManyRequests, "Too many sign-ins in progress; try again in a few minutes.")
		return
	}
	s.pending[loginID] = &pendingLogin{
		csrf:          csrf,
		browser:       browser,
		redirectURI:   redirectURI,
		state:         q.Get("state"),
		codeChallenge: q.Get("code_challenge"),
		expires:       now.Add(loginTTL),
	}
	users := make([]User, len(s.users))
	for i, u := range s.users {
		users[i] = u.User
	}
	s.mu.Unlock()

	origin, _ := redirectOrigin(redirectURI) // validated in New
	setPageHeaders(w, origin)
	w.WriteHeader(http.StatusOK)
	_ = loginPage.Execute(w, struct {
		LoginID, CSRF string
		Users         []User
	}{loginID, csrf, users})
}

// handleLogin takes a button press: it checks the CSRF token and the browser
// binding, consumes the login page, issues a code and redirects.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		s.pageError(w, http.StatusBadRequest, "Malformed form.")
		return
	}
	loginID := r.PostForm.Get("login_id")
	csrf := r.PostForm.Get("csrf_token")
	email := r.PostForm.Get("email")
	cookie, _ := r.Cookie(browserCookie)

	now := s.now()
	s.mu.Lock()
	p := s.pending[loginID]
	if p == nil || !now.Before(p.expires) {
		s.mu.Unlock()
		s.pageError(w, http.StatusBadRequest, "This sign-in page has expired or was already used. Start signing in again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(p.csrf)) != 1 ||
		cookie == nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(p.browser)) != 1 {
		s.mu.Unlock()
		s.pageError(w, http.StatusForbidden, "Invalid CSRF token.")
		return
	}
	u := s.userByEmailLocked(email)
	if u == nil {
		s.mu.Unlock()
		s.pageError(w, http.StatusBadRequest, "Unknown dev user.")
		return
	}
	delete(s.pending, loginID)
	if len(s.codes) >= maxPending {
		s.mu.Unlock()
		s.pageError(w, http.StatusTooManyRequests, "Too many unredeemed codes; try again in a few minutes.")
		return
	}
	code := randomToken()
	s.codes[code] = &authCode{
		email:         u.Email,
		redirectURI:   p.redirectURI,
		codeChallenge: p.codeChallenge,
		expires:       now.Add(codeTTL),
	}
	s.mu.Unlock()

	target, err := url.Parse(p.redirectURI)
	if err != nil {
		s.pageError(w, http.StatusInternalServerError, "Invalid redirect_uri.")
		return
	}
	v := target.Query()
	v.Set("code", code)
	if p.state != "" {
		v.Set("state", p.state)
	}
	target.RawQuery = v.Encode()
	s.logger.Info("devauthkit: signed in", "email", u.Email)
	setPageHeaders(w, "") // also keeps http.Redirect from writing an HTML body
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}

// handleLogout ends a session and returns to return_to when it is on the
// origin of a configured redirect URI.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("session_id")
	if sid == "" {
		s.pageError(w, http.StatusBadRequest, "session_id is required.")
		return
	}
	s.revoke(r.Context(), sid)
	if rt := r.URL.Query().Get("return_to"); rt != "" {
		if origin, err := redirectOrigin(rt); err == nil && s.allowedOrigin(origin) {
			setPageHeaders(w, "") // also keeps http.Redirect from writing an HTML body
			http.Redirect(w, r, rt, http.StatusFound)
			return
		}
	}
	setPageHeaders(w, "")
	w.WriteHeader(http.StatusOK)
	_ = errorPage.Execute(w, "You are signed out.")
}

func (s *Server) allowedOrigin(origin string) bool {
	for _, r := range s.redirectURIs {
		if o, err := redirectOrigin(r); err == nil && o == origin {
			return true
		}
	}
	return false
}

func (s *Server) pageError(w http.ResponseWriter, status int, msg string) {
	setPageHeaders(w, "")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, msg)
}

// setPageHeaders sets the security headers of every HTML page. formOrigin is
// the redirect target's origin, which form-action must allow because the
// login form's response redirects there.
func setPageHeaders(w http.ResponseWriter, formOrigin string) {
	formAction := "'self'"
	if formOrigin != "" && !strings.ContainsAny(formOrigin, " ;,'\"") {
		formAction += " " + formOrigin
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
