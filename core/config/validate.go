package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// replicaIDPattern is what server.replica_id may be: it names the replica
// and starts its MCP session IDs, which load balancers match on.
var replicaIDPattern = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate checks a configuration built in code (tests, embedding) the way
// [Load] checks a loaded one, and returns the first problem as a one-line
// *Error.
func (c *Config) Validate() error { return validate(c, nil) }

// validator reports problems with the source of each key.
type validator struct {
	cfg     *Config
	sources map[string]string
}

func (v *validator) fail(key string, value any, problem string) error {
	src := v.sources[key]
	if src == "default" {
		src = ""
	}
	ki := schema.byPath[key]
	shown := ""
	switch {
	case ki != nil:
		shown = ki.display(value)
	case value != nil:
		shown = displayValue(value)
	}
	return &Error{Source: src, Key: key, Value: shown, Problem: problem}
}

// missing reports a required value that is not set.
func (v *validator) missing(key, problem string) error {
	return &Error{Key: key, Problem: problem}
}

func validate(c *Config, sources map[string]string) error {
	v := &validator{cfg: c, sources: sources}
	checks := []func() error{v.server, v.log, v.store, v.auth, v.plugins, v.mcp}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) server() error {
	s := v.cfg.Server
	host, port, err := net.SplitHostPort(s.Listen)
	if err != nil {
		return v.fail("server.listen", s.Listen, `must be host:port, for example "127.0.0.1:8788"`)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return v.fail("server.listen", s.Listen, "must have a port between 0 and 65535")
	}
	if !v.cfg.Production() && !isLoopbackHost(host) {
		return v.fail("server.listen", s.Listen, "must be a loopback address (127.0.0.1, [::1] or localhost) in development mode; set WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and COOKIE_ENCRYPTION_KEY to listen on other addresses")
	}
	if err := v.publicURL(); err != nil {
		return err
	}
	durations := []struct {
		key string
		d   time.Duration
		min time.Duration
		max time.Duration
	}{
		{"server.shutdown_timeout", s.ShutdownTimeout, time.Second, time.Hour},
		{"server.read_header_timeout", s.ReadHeaderTimeout, time.Second, 10 * time.Minute},
		{"server.idle_timeout", s.IdleTimeout, time.Second, 24 * time.Hour},
	}
	for _, d := range durations {
		if err := v.durationRange(d.key, d.d, d.min, d.max); err != nil {
			return err
		}
	}
	if s.MaxHeaderBytes < 4<<10 || s.MaxHeaderBytes > 16<<20 {
		return v.fail("server.max_header_bytes", s.MaxHeaderBytes, "must be between 4096 and 16777216 (16 MiB)")
	}
	if s.MaxBodyBytes < 4<<10 || s.MaxBodyBytes > 1<<30 {
		return v.fail("server.max_body_bytes", s.MaxBodyBytes, "must be between 4096 and 1073741824 (1 GiB)")
	}
	for _, h := range s.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ ?#@") {
			return v.fail("server.allowed_hosts", h, "each entry must be a host or host:port")
		}
	}
	for _, p := range s.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			return v.fail("server.trusted_proxies", p, `each entry must be an IP address or a CIDR prefix, for example "10.0.0.0/8"`)
		}
	}
	if s.AdminListen != "" {
		host, port, err := net.SplitHostPort(s.AdminListen)
		if err != nil {
			return v.fail("server.admin_listen", s.AdminListen, `must be host:port, for example "127.0.0.1:8789", or empty to disable the admin endpoint`)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return v.fail("server.admin_listen", s.AdminListen, "must have a port between 0 and 65535")
		}
		if !isLoopbackHost(host) {
			return v.fail("server.admin_listen", s.AdminListen, "must be a loopback address (127.0.0.1, [::1] or localhost): the admin endpoint is for operators on this machine")
		}
		if s.AdminListen == s.Listen && port != "0" {
			return v.fail("server.admin_listen", s.AdminListen, "must differ from server.listen")
		}
	}
	if s.ReplicaID != "" && !replicaIDPattern.MatchString(s.ReplicaID) {
		return v.fail("server.replica_id", s.ReplicaID, "must be 1 to 64 characters of a-z, 0-9, '-' and '_' (it starts MCP session IDs)")
	}
	if s.Pprof && s.AdminListen == "" {
		return v.fail("server.pprof", s.Pprof, "needs server.admin_listen: the profiles are served on the admin endpoint only")
	}
	for _, o := range s.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return v.fail("server.allowed_origins", o, `each entry must be an origin such as "https://app.example.com"`)
		}
	}
	return nil
}

func (v *validator) publicURL() error {
	raw := v.cfg.Server.PublicURL
	const key = "server.public_url"
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return v.fail(key, raw, `must be an absolute http or https URL, for example "https://mcp.example.com"`)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return v.fail(key, raw, "must not have user information, a query or a fragment")
	}
	if u.Path != "" && u.Path != "/" {
		return v.fail(key, raw, "must not have a path: toolgate serves its routes at the root")
	}
	if v.cfg.Production() && u.Scheme != "https" && !isLoopbackHost(u.Hostname()) {
		return v.fail(key, raw, "must use https in production mode (WORKOS_CLIENT_ID is set) unless the host is a loopback address")
	}
	return nil
}

func (v *validator) durationRange(key string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return v.fail(key, formatDuration(d), fmt.Sprintf("must be between %s and %s", formatDuration(lo), formatDuration(hi)))
	}
	return nil
}

func (v *validator) log() error {
	l := v.cfg.Log
	if !oneOf(l.Level, "debug", "info", "warn", "error") {
		return v.fail("log.level", l.Level, "must be one of debug, info, warn, error")
	}
	if !oneOf(l.Format, "auto", "text", "json") {
		return v.fail("log.format", l.Format, "must be one of auto, text, json")
	}
	return nil
}

func (v *validator) store() error {
	s := v.cfg.Store
	if !oneOf(s.Backend, "badger", "postgres") {
		return v.fail("store.backend", s.Backend, "must be one of badger, postgres")
	}
	if s.Backend == "postgres" {
		if err := v.postgres(); err != nil {
			return err
		}
	}
	if strings.TrimSpace(s.Dir) == "" {
		return v.fail("store.dir", s.Dir, "must name a directory")
	}
	if _, err := s.EncryptionKeyBytes(); err != nil {
		return v.fail("store.encryption_key", s.EncryptionKey.Reveal(), err.Error())
	}
	return v.durationRange("store.gc_interval", s.GCInterval, time.Second, 24*time.Hour)
}

// postgres checks the postgres backend's settings. Problems with the URL
// never quote it: it may hold a password.
func (v *validator) postgres() error {
	p := v.cfg.Store.Postgres
	if v.cfg.Store.EncryptionKey != "" {
		return v.fail("store.encryption_key", v.cfg.Store.EncryptionKey.Reveal(), `applies to the badger backend only: with "postgres", encrypt in the database server (disk encryption) and in transit (sslmode=verify-full in store.postgres.url)`)
	}
	raw := strings.TrimSpace(p.URL.Reveal())
	if raw == "" {
		return v.missing("store.postgres.url", `must be set when store.backend is "postgres", for example postgres://toolgate:PASSWORD@db.internal:5432/toolgate (prefer $TOOLGATE_STORE_POSTGRES_URL)`)
	}
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return v.fail("store.postgres.url", p.URL.Reveal(), "must be a postgres:// or postgresql:// URL with a host, for example postgres://toolgate:PASSWORD@db.internal:5432/toolgate")
	}
	if p.MaxConns < 1 || p.MaxConns > 1000 {
		return v.fail("store.postgres.max_conns", p.MaxConns, "must be between 1 and 1000")
	}
	return nil
}

// EncryptionKeyBytes decodes store.encryption_key: 32, 48 or 64 hex digits,
// or standard base64 (padding optional), of 16, 24 or 32 bytes. It returns
// nil for an empty key.
func (s StoreConfig) EncryptionKeyBytes() ([]byte, error) {
	raw := strings.TrimSpace(s.EncryptionKey.Reveal())
	if raw == "" {
		return nil, nil
	}
	if len(raw) == 32 || len(raw) == 48 || len(raw) == 64 {
		if b, err := hex.DecodeString(raw); err == nil {
			return b, nil
		}
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("must be 16, 24 or 32 bytes written as hex (32, 48 or 64 digits) or standard base64")
	}
	if n := len(b); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("decodes to %d bytes; must be 16, 24 or 32 bytes written as hex or standard base64", n)
	}
	return b, nil
}

func (v *validator) auth() error {
	a := v.cfg.Auth
	if !oneOf(a.Mode, "proxy", "authkit") {
		return v.fail("auth.mode", a.Mode, "must be one of proxy, authkit")
	}
	if a.Mode == "authkit" && !v.cfg.Production() {
		return v.fail("auth.mode", a.Mode, `needs WorkOS (set WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and auth.authkit_domain): the development AuthKit only works with auth.mode = "proxy"`)
	}
	if v.cfg.Production() {
		if !a.WorkOSAPIKey.IsSet() {
			return v.missing("auth.workos_api_key", "is required in production mode (WORKOS_CLIENT_ID is set): set WORKOS_CLIENT_SECRET to the WorkOS API key")
		}
		if !a.CookieEncryptionKey.IsSet() {
			return v.missing("auth.cookie_encryption_key", "is required in production mode (WORKOS_CLIENT_ID is set): set COOKIE_ENCRYPTION_KEY to at least 32 random bytes")
		}
		if a.Mode == "authkit" && a.AuthKitDomain == "" {
			return v.missing("auth.authkit_domain", `is required when auth.mode is "authkit" in production mode: set it to your AuthKit domain, for example "https://example.authkit.app"`)
		}
	}
	if a.CookieEncryptionKey.IsSet() && len(a.CookieEncryptionKey.Reveal()) < 32 {
		return v.fail("auth.cookie_encryption_key", a.CookieEncryptionKey.Reveal(), fmt.Sprintf("is %d bytes long; must be at least 32 bytes", len(a.CookieEncryptionKey.Reveal())))
	}
	if a.AuthKitDomain != "" {
		if err := v.serviceURL("auth.authkit_domain", a.AuthKitDomain); err != nil {
			return err
		}
	}
	if a.WorkOSAPIURL != "" {
		if err := v.serviceURL("auth.workos_api_url", a.WorkOSAPIURL); err != nil {
			return err
		}
	}
	ttls := []struct {
		key    string
		d      time.Duration
		lo, hi time.Duration
	}{
		{"auth.access_token_ttl", a.AccessTokenTTL, time.Minute, 24 * time.Hour},
		{"auth.refresh_token_ttl", a.RefreshTokenTTL, time.Hour, 8760 * time.Hour},
		{"auth.code_ttl", a.CodeTTL, 10 * time.Second, 10 * time.Minute},
		{"auth.sign_in_ttl", a.SignInTTL, time.Minute, time.Hour},
		{"auth.client_ttl", a.ClientTTL, time.Hour, 8760 * time.Hour},
		{"auth.consent_ttl", a.ConsentTTL, time.Hour, 8760 * time.Hour},
		{"auth.token_cache_ttl", a.TokenCacheTTL, time.Second, time.Hour},
		{"auth.dev_access_token_ttl", a.DevAccessTokenTTL, time.Second, 24 * time.Hour},
	}
	for _, t := range ttls {
		if err := v.durationRange(t.key, t.d, t.lo, t.hi); err != nil {
			return err
		}
	}
	if a.RateLimit < 0 || a.RateLimit > 100000 {
		return v.fail("auth.rate_limit", a.RateLimit, "must be between 0 and 100000 requests a minute (0 turns the limit off)")
	}
	if a.RateLimitBurst < 1 || a.RateLimitBurst > 10000 {
		return v.fail("auth.rate_limit_burst", a.RateLimitBurst, "must be between 1 and 10000")
	}
	if a.RefreshTokenTTL <= a.AccessTokenTTL {
		return v.fail("auth.refresh_token_ttl", formatDuration(a.RefreshTokenTTL), fmt.Sprintf("must be longer than auth.access_token_ttl (%s)", formatDuration(a.AccessTokenTTL)))
	}
	if !v.cfg.Production() && len(a.DevUsers) == 0 {
		return v.missing("auth.dev_users", "needs at least one user in development mode (no WORKOS_CLIENT_ID)")
	}
	seen := map[string]bool{}
	for i, u := range a.DevUsers {
		key := fmt.Sprintf("auth.dev_users[%d]", i)
		email := strings.ToLower(strings.TrimSpace(u.Email))
		at := strings.IndexByte(email, '@')
		if at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t<>\"") {
			return &Error{Source: v.src("auth.dev_users"), Key: key + ".email", Value: quote(u.Email), Problem: "must be an email address such as \"alice@example.com\""}
		}
		if seen[email] {
			return &Error{Source: v.src("auth.dev_users"), Key: key + ".email", Value: quote(u.Email), Problem: "is listed twice; dev user emails must be unique"}
		}
		seen[email] = true
		for _, p := range u.Permissions {
			if strings.TrimSpace(p) == "" {
				return &Error{Source: v.src("auth.dev_users"), Key: key + ".permissions", Value: quote(p), Problem: "must not contain empty permission names"}
			}
		}
	}
	return nil
}

// serviceURL checks the URL of an outside service we call: absolute,
// https unless it is on this machine.
func (v *validator) serviceURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return v.fail(key, raw, `must be an absolute https URL without query or fragment, for example "https://api.workos.com"`)
	}
	if u.Scheme != "https" && !isLoopbackHost(u.Hostname()) {
		return v.fail(key, raw, "must use https unless the host is a loopback address")
	}
	return nil
}

func (v *validator) plugins() error {
	p := v.cfg.Plugins
	if strings.TrimSpace(p.Config) == "" {
		return v.fail("plugins.config", p.Config, "must name the plugins file")
	}
	if strings.TrimSpace(p.Dir) == "" {
		return v.fail("plugins.dir", p.Dir, "must name the plugin folder")
	}
	if p.PoolSize < 0 || p.PoolSize > 1024 {
		return v.fail("plugins.pool_size", p.PoolSize, "must be between 0 and 1024 (0 means GOMAXPROCS)")
	}
	if p.MaxQueue < 0 || p.MaxQueue > 100000 {
		return v.fail("plugins.max_queue", p.MaxQueue, "must be between 0 and 100000 (0: no call waits)")
	}
	if err := v.durationRange("plugins.queue_timeout", p.QueueTimeout, time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if d := p.IdleInstanceTTL; d != 0 && (d < time.Second || d > 24*time.Hour) {
		return v.fail("plugins.idle_instance_ttl", formatDuration(d), "must be 0 (keep idle instances) or between 1s and 24h")
	}
	return nil
}

func (v *validator) mcp() error {
	m := v.cfg.MCP
	if err := v.durationRange("mcp.session_idle_timeout", m.SessionIdleTimeout, time.Minute, 24*time.Hour); err != nil {
		return err
	}
	if m.MaxSessionsPerUser < 1 || m.MaxSessionsPerUser > 10000 {
		return v.fail("mcp.max_sessions_per_user", m.MaxSessionsPerUser, "must be between 1 and 10000")
	}
	if m.ToolCallsPerMinute < 0 || m.ToolCallsPerMinute > 1000000 {
		return v.fail("mcp.tool_calls_per_minute", m.ToolCallsPerMinute, "must be between 0 and 1000000 (0 turns the limit off)")
	}
	if m.ToolCallBurst < 1 || m.ToolCallBurst > 100000 {
		return v.fail("mcp.tool_call_burst", m.ToolCallBurst, "must be between 1 and 100000")
	}
	return v.durationRange("mcp.audit_retention", m.AuditRetention, time.Hour, 87600*time.Hour)
}

func (v *validator) src(key string) string {
	if s := v.sources[key]; s != "default" {
		return s
	}
	return ""
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}
