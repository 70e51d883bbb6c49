package auth

import (
	"html/template"
	"net/http"
)

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{.ClientName}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
.warn{background:#fff4ce;border:1px solid #e0b400;padding:.75rem;border-radius:6px}
.host{font-family:ui-monospace,monospace;font-weight:bold}
.buttons{display:flex;gap:1rem;margin-top:1.5rem}
button{flex:1;padding:.75rem;font-size:1rem;border-radius:6px;border:1px solid #888;cursor:pointer}
button.approve{background:#1f6feb;color:#fff;border-color:#1f6feb}
small{color:#555}
</style>
</head>
<body>
<h1>Authorize {{.ClientName}}</h1>
<p><strong>{{.ClientName}}</strong> wants to use <strong>{{.ServerName}}</strong> on your behalf.</p>
<p>After you sign in, its access will be sent to <span class="host" id="redirect-host">{{.RedirectHost}}</span>.</p>
{{if .LoopbackOnly}}<p class="warn" id="loopback-warning"><strong>Check this client.</strong> It only receives tokens on this computer (localhost). Any program on your computer can claim such a name, so approve only if you just started connecting {{.ClientName}} yourself.</p>{{end}}
{{if .PrivateScheme}}<p class="warn" id="scheme-warning"><strong>Check this client.</strong> It receives tokens through an app link ({{.RedirectHost}}) that any installed app could claim. Approve only if you just started connecting {{.ClientName}} yourself.</p>{{end}}
{{if .Scopes}}<p>Requested access: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}</p>{{end}}
<p><small>Client ID: {{.ClientID}}{{with .ClientURI}} · <a href="{{.}}" rel="noopener noreferrer">{{.}}</a>{{end}}</small></p>
<form method="post" action="authorize">
<input type="hidden" name="request" value="{{.Request}}">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<div class="buttons">
<button type="submit" name="action" value="deny">Deny</button>
<button type="submit" name="action" value="approve" class="approve">Approve</button>
</div>
</form>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorization error</title></head>
<body>
<h1>Authorization error</h1>
<p>{{.Description}}</p>
<p><small>error: <code id="error">{{.Code}}</code></small></p>
</body>
</html>
`))

type consentData struct {
	ClientName, ClientID, ClientURI string
	ServerName                      string
	RedirectHost                    string
	LoopbackOnly, PrivateScheme     bool
	Scopes                          []string
	Request, CSRF                   string
}

// setPageHeaders forbids framing, caching, referrers and every resource
// load except inline style on our HTML pages.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// seeOther redirects the browser to target with 303 See Other and the page
// headers: a redirect is a page too (no caching of a URL that carries a
// code, no referrer), and the preset Content-Type keeps http.Redirect from
// writing its HTML body.
func seeOther(w http.ResponseWriter, r *http.Request, target string) {
	setPageHeaders(w)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// renderError shows an error the user's browser must not be redirected
// with (RFC 6749 §4.1.2.1): an unknown client, a bad redirect URI, a bad
// callback.
func renderError(w http.ResponseWriter, e *Error) {
	setPageHeaders(w)
	w.WriteHeader(e.status())
	_ = errorPage.Execute(w, e)
}
