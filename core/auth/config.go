package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
	DefaultCodeTTL         = 60 * time.Second
	DefaultPendingTTL      = 10 * time.Minute
	DefaultClientTTL       = 30 * 24 * time.Hour
	DefaultConsentTTL      = 30 * 24 * time.Hour
	DefaultScope           = "mcp:tools"
	DefaultResourceName    = "toolgate"
	DefaultCacheSize       = 10000
	DefaultCacheTTL        = time.Minute
	DefaultRegisterRate    = 60
	DefaultIPRateEntries   = 100000
)

// MinCookieKeyLen is the shortest accepted Config.CookieKey, in bytes.
const MinCookieKeyLen = 32

// Config configures a Server. Every field's zero value is a documented
// default, except PublicURL and CookieKey, which are required. The
// composition root fills it from core/config's AuthConfig and ServerConfig.
type Config struct {
	// PublicURL is the absolute http(s) URL clients reach the server at,
	// without a path, query or fragment (server.public_url, for example
	// "http://localhost:8788"). It is our issuer byte for byte, the base of
	// every endpoint URL and of the protected resources PublicURL+"/mcp"
	// and PublicURL+"/sse". When it uses https, browser cookies carry the
	// __Host- prefix and the Secure attribute. Required.
	PublicURL string
	// CookieKey is COOKIE_ENCRYPTION_KEY: at least MinCookieKeyLen bytes.
	// Keys for signing cookies and consent forms and for encrypting the
	// upstream secrets at rest are derived from it with HKDF-SHA256, each
	// under its own label. Changing it logs every browser out of its
	// remembered consents and makes stored upstream refresh tokens
	// unreadable (their grants then end at the next refresh). Required.
	CookieKey []byte
	// AccessTokenTTL is the lifetime of the access tokens we issue.
	// Default DefaultAccessTokenTTL (1h).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of a refresh token and of an unused
	// grant, from the code exchange on; every refresh starts it again.
	// Until its code is exchanged a grant lives only as long as the code
	// (CodeTTL). Default DefaultRefreshTokenTTL
	// (30 days).
	RefreshTokenTTL time.Duration
	// CodeTTL is the lifetime of our authorization codes. Default
	// DefaultCodeTTL (60s); at most 10 minutes.
	CodeTTL time.Duration
	// PendingTTL is how long a user has to sign in upstream after
	// approving (the life of the upstream state). Default
	// DefaultPendingTTL (10 minutes).
	PendingTTL time.Duration
	// ClientTTL is how long a dynamically registered client stays
	// registered after it last started an authorization or refreshed a
	// token. Default DefaultClientTTL (30 days).
	ClientTTL time.Duration
	// ConsentTTL is how long a browser remembers that it approved a
	// client. Default DefaultConsentTTL (30 days).
	ConsentTTL time.Duration
	// Scopes are the scopes we support and grant; the first is the
	// baseline named in WWW-Authenticate challenges. Default
	// []string{DefaultScope}.
	Scopes []string
	// ResourceName is the human-readable resource_name of the protected
	// resource metadata and the server name on the consent page. Default
	// DefaultResourceName.
	ResourceName string
	// CacheSize bounds the bearer-token cache (entries). Default
	// DefaultCacheSize; a negative value turns the cache off.
	CacheSize int
	// CacheTTL is the longest a verified token stays cached before the
	// store is asked again (never past the token's own expiry). Default
	// DefaultCacheTTL (1 minute).
	CacheTTL time.Duration
	// RegisterRate is how many client registrations per minute the server
	// accepts in total before answering 429. Default DefaultRegisterRate;
	// a negative value turns the limit off.
	RegisterRate int
	// IPRateLimit is how many requests a minute one client IP address may
	// make to each of /register, /authorize (GET and POST), /callback and
	// /token; beyond it they are answered 429 with Retry-After and the
	// error code ErrCodeTooManyRequests. Zero (the default) or negative
	// turns the per-address limit off.
	IPRateLimit int
	// IPRateBurst is how many requests one address may make at once before
	// IPRateLimit paces it. Default 1 when IPRateLimit is on.
	IPRateBurst int
	// IPRateEntries bounds the addresses tracked at once (per endpoint);
	// addresses idle long enough to be full again are forgotten first,
	// then the least recently seen. Default DefaultIPRateEntries.
	IPRateEntries int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client address for IPRateLimit. Empty (the default): the
	// TCP peer is the client and the header is ignored.
	TrustedProxies []netip.Prefix
	// DisableRegistration turns off dynamic client registration (RFC 7591):
	// the metadata omits registration_endpoint and /register answers 404.
	// Default false (registration on; most MCP clients need it).
	DisableRegistration bool
	// DisableCIMD turns off Client ID Metadata Documents: a client_id that
	// is an https URL is then an unknown client, and the metadata does not
	// advertise client_id_metadata_document_supported. Default false
	// (CIMD on).
	DisableCIMD bool
	// CIMDAllowLoopback lets metadata documents be fetched from loopback
	// addresses, for local development of a client. It only takes effect
	// when PublicURL itself is on loopback; every other special-use
	// address is refused regardless. Default false.
	CIMDAllowLoopback bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives diagnostics; it never sees tokens, codes, secrets or
	// cookie values. Default slog.Default() (the logger argument of New
	// takes precedence when not nil).
	Logger *slog.Logger
}

// withDefaults validates c and returns a copy with defaults applied.
func (c Config) withDefaults() (Config, error) {
	pu, err := checkPublicURL(c.PublicURL)
	if err != nil {
		return c, err
	}
	c.PublicURL = pu
	if len(c.CookieKey) < MinCookieKeyLen {
		return c, fmt.Errorf("cookie key is %d bytes, want at least %d", len(c.CookieKey), MinCookieKeyLen)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, DefaultAccessTokenTTL)
	def(&c.RefreshTokenTTL, DefaultRefreshTokenTTL)
	def(&c.CodeTTL, DefaultCodeTTL)
	def(&c.PendingTTL, DefaultPendingTTL)
	def(&c.ClientTTL, DefaultClientTTL)
	def(&c.ConsentTTL, DefaultConsentTTL)
	def(&c.CacheTTL, DefaultCacheTTL)
	for name, d := range map[string]time.Duration{
		"access token ttl": c.AccessTokenTTL, "refresh token ttl": c.RefreshTokenTTL,
		"code ttl": c.CodeTTL, "pending ttl": c.PendingTTL, "client ttl": c.ClientTTL,
		"consent ttl": c.ConsentTTL, "cache ttl": c.CacheTTL,
	} {
		if d < 0 {
			return c, fmt.Errorf("%s %s is negative", name, d)
		}
	}
	if c.CodeTTL > 10*time.Minute {
		return c, fmt.Errorf("code ttl %s is longer than 10 minutes", c.CodeTTL)
	}
	if c.RefreshTokenTTL <= c.AccessTokenTTL {
		return c, fmt.Errorf("refresh token ttl %s must be longer than access token ttl %s", c.RefreshTokenTTL, c.AccessTokenTTL)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{DefaultScope}
	}
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			return c, fmt.Errorf("scope %q is not a valid scope token", s)
		}
	}
	if c.ResourceName == "" {
		c.ResourceName = DefaultResourceName
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.RegisterRate == 0 {
		c.RegisterRate = DefaultRegisterRate
	}
	if c.IPRateEntries <= 0 {
		c.IPRateEntries = DefaultIPRateEntries
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// checkPublicURL validates a public base URL and returns it without a
// trailing slash.
func checkPublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", errors.New("public url is required")
	case err != nil:
		return "", fmt.Errorf("public url: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", fmt.Errorf("public url %q is not an absolute http(s) URL", raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("public url %q must not have a path, query, fragment or user info", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// one or more of %x21 / %x23-5B / %x5D-7E.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}
