package auth

import (
	"net"
	"net/url"
	"strings"
)

// Redirect URI limits (RFC 7591 registrations).
const (
	MaxRedirectURIs     = 10
	MaxRedirectURILen   = 2048
	maxClientNameLen    = 200
	maxSoftwareFieldLen = 200
	maxStateLen         = 2048
)

// forbiddenSchemes can never be redirect targets.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "data": true, "vbscript": true, "file": true,
	"about": true, "blob": true, "filesystem": true, "ftp": true,
	"ws": true, "wss": true, "mailto": true, "tel": true,
}

// redirectKind classifies a valid redirect URI.
type redirectKind int

const (
	redirectHTTPS    redirectKind = iota + 1 // https to a named or public host
	redirectLoopback                         // http to 127.0.0.0/8, [::1] or localhost (RFC 8252 §7.3)
	redirectPrivate                          // a private-use scheme (RFC 8252 §7.1)
)

// checkRedirectURI validates a redirect URI for registration: absolute, no
// fragment, no user info, no wildcard; https, loopback http, or a
// private-use scheme. It returns the kind, or a description of the problem.
func checkRedirectURI(raw string) (redirectKind, string) {
	if raw == "" {
		return 0, "redirect URI is empty"
	}
	if len(raw) > MaxRedirectURILen {
		return 0, "redirect URI is longer than 2048 bytes"
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= 0x20 || raw[i] >= 0x7f {
			return 0, "redirect URI contains a space, control or non-ASCII character"
		}
	}
	if strings.Contains(raw, "*") {
		return 0, "redirect URI contains a wildcard"
	}
	if strings.Contains(raw, "#") {
		return 0, "redirect URI has a fragment"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0, "redirect URI does not parse"
	}
	if u.Scheme == "" {
		return 0, "redirect URI is not absolute"
	}
	scheme := strings.ToLower(u.Scheme)
	if !strings.HasPrefix(raw, scheme+":") { // url.Parse lowercases the scheme
		return 0, "redirect URI scheme must be lowercase"
	}
	if u.User != nil {
		return 0, "redirect URI has user info"
	}
	switch {
	case forbiddenSchemes[scheme]:
		return 0, "redirect URI scheme " + scheme + " is not allowed"
	case scheme == "https":
		if u.Host == "" || u.Hostname() == "" {
			return 0, "https redirect URI has no host"
		}
		return redirectHTTPS, ""
	case scheme == "http":
		if !isLoopbackHost(u.Hostname()) {
			return 0, "http redirect URIs must point at a loopback address (127.0.0.1, [::1] or localhost); use https otherwise"
		}
		return redirectLoopback, ""
	default:
		if u.Opaque != "" && u.Host == "" && !strings.HasPrefix(u.Opaque, "/") {
			// cursor:foo is not a URI a browser can return to reliably.
			return 0, "private-use redirect URI must have the form scheme:/path or scheme://path"
		}
		return redirectPrivate, ""
	}
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// matchRedirectURI reports whether requested matches the registered
// redirect URI exactly, allowing any port for loopback IP literals and
// localhost (RFC 8252 §7.3). Scheme, host, path and query must match byte
// for byte; localhost and 127.0.0.1 never match each other.
func matchRedirectURI(registered, requested string) bool {
	if registered == requested {
		return true
	}
	ru, err := url.Parse(registered)
	if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
		return false
	}
	qu, err := url.Parse(requested)
	if err != nil || qu.Scheme != "http" || qu.User != nil || qu.Fragment != "" || strings.Contains(requested, "#") {
		return false
	}
	if qu.Hostname() != ru.Hostname() || qu.EscapedPath() != ru.EscapedPath() || qu.RawQuery != ru.RawQuery || qu.ForceQuery != ru.ForceQuery {
		return false
	}
	if p := qu.Port(); p != "" {
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// allLoopback reports whether every URI is a loopback redirect, the case
// the consent page warns about (anyone can listen on localhost).
func allLoopback(uris []string) bool {
	for _, r := range uris {
		if k, _ := checkRedirectURI(r); k != redirectLoopback {
			return false
		}
	}
	return len(uris) > 0
}

// redirectHost is what the consent page names as the destination of the
// tokens: the host of an http(s) URI, the scheme of a private-use one.
func redirectHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return u.Host
	}
	if u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}
