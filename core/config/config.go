// Package config loads toolgate's configuration into typed structs.
//
// Values are layered, each layer overriding the one before it:
//
//  1. built-in defaults ([Default]);
//  2. the TOML file toolgate.toml (optional; its path comes from the
//     -config flag or $TOOLGATE_CONFIG, else ./toolgate.toml is read if it
//     exists);
//  3. the environment: WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and
//     COOKIE_ENCRYPTION_KEY under the names the TypeScript original used,
//     and TOOLGATE_<SECTION>_<KEY> for every other key;
//  4. command-line flags.
//
// Loading is strict: an unknown key in the file, a value of the wrong type
// or a value out of range stops start-up with one line that names the key,
// the value and what is allowed. Secrets are of type [Secret], which never
// prints its value.
//
// Only the command (cmd/toolgate) and the composition root (core/server)
// import this package; every other package receives plain values.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is toolgate's whole configuration. The zero value is not useful;
// start from [Default] or [Load].
type Config struct {
	// Server configures the HTTP listener.
	Server ServerConfig `koanf:"server"`
	// Log configures the process's logs.
	Log LogConfig `koanf:"log"`
	// Store configures where state is kept.
	Store StoreConfig `koanf:"store"`
	// Auth configures sign-in: WorkOS AuthKit in production, the embedded
	// development AuthKit otherwise.
	Auth AuthConfig `koanf:"auth"`
	// Plugins configures the WebAssembly plugin host.
	Plugins PluginsConfig `koanf:"plugins"`
	// MCP configures the MCP endpoint (/mcp and /sse): sessions, denied
	// tools and the audit trail.
	MCP MCPConfig `koanf:"mcp"`
}

// ServerConfig configures the HTTP listener.
type ServerConfig struct {
	// Listen is the TCP address the server listens on, as host:port. The
	// default is "127.0.0.1:8788". Without WorkOS credentials (development
	// mode) it must be a loopback address.
	Listen string `koanf:"listen"`
	// PublicURL is the absolute http(s) URL clients use to reach the server,
	// without a path, query or fragment; it is the issuer of our OAuth
	// metadata and the base of the MCP URL. In production mode it must use
	// https unless its host is a loopback address. The default is
	// "http://localhost:8788".
	PublicURL string `koanf:"public_url"`
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight
	// requests to finish before closing them. The default is 15s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// ReadHeaderTimeout is how long a client may take to send the request
	// headers. The default is 10s.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// IdleTimeout is how long an idle keep-alive connection stays open.
	// The default is 120s.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxHeaderBytes is the largest request header block accepted, in
	// bytes. The default is 65536 (64 KiB).
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxBodyBytes is the largest request body accepted, in bytes. The
	// default is 1048576 (1 MiB).
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// AllowedHosts lists the Host header values the server answers to
	// (host or host:port); requests for any other host are refused, which
	// defeats DNS rebinding. Empty (the default) derives the list from
	// PublicURL, plus the loopback names of the listen port when Listen is
	// a loopback address. See [Config.AllowedHosts].
	AllowedHosts []string `koanf:"allowed_hosts"`
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may call the server from a web page, for the cross-origin checks of
	// the MCP and OAuth endpoints (EXPERIMENTAL: no endpoint reads it until
	// those land). Empty (the default) derives the single origin of
	// PublicURL. See [Config.AllowedOrigins].
	AllowedOrigins []string `koanf:"allowed_origins"`
	// AdminListen is the loopback host:port of the operator endpoint that
	// `toolgate grants` and `toolgate clients` talk to (list and revoke
	// grants, list and delete clients while the server runs). It must be a
	// loopback address in every mode; requests need the token in
	// <store.dir>/admin.token. Empty disables the endpoint. The default is
	// "127.0.0.1:8789".
	AdminListen string `koanf:"admin_listen"`
	// Pprof serves the Go runtime's profiles (net/http/pprof: CPU, heap,
	// goroutines, ...) under /debug/pprof/ on the admin endpoint, behind
	// its loopback check and token; never on Listen. It needs AdminListen.
	// The default is false.
	Pprof bool `koanf:"pprof"`
	// TrustedProxies lists the reverse proxies (CIDR prefixes such as
	// "10.0.0.0/8", or single addresses) whose X-Forwarded-For header
	// names the client address for the per-address rate limits. Empty (the
	// default): the TCP peer is the client and X-Forwarded-For is ignored,
	// so a client cannot pick its own address. See
	// [Config.TrustedProxyPrefixes].
	TrustedProxies []string `koanf:"trusted_proxies"`
	// ReplicaID names this replica among those sharing a store (in
	// `toolgate replicas` and /readyz) and starts its MCP session IDs
	// ("<replica_id>.<random>"), so a load balancer can send a session's
	// requests to the replica that holds it. 1-64 characters of a-z, 0-9,
	// '-' and '_'. Empty (the default): the host name and the listen port
	// name the replica, and session IDs have no prefix.
	ReplicaID string `koanf:"replica_id"`
}

// LogConfig configures the process's logs.
type LogConfig struct {
	// Level is the least severe level logged: "debug", "info", "warn" or
	// "error". The default is "info".
	Level string `koanf:"level"`
	// Format is "text" (human-readable), "json" (one JSON object a line),
	// or "auto" (the default): text when standard error is a terminal,
	// JSON otherwise.
	Format string `koanf:"format"`
}

// StoreConfig configures where state is kept.
type StoreConfig struct {
	// Backend names the storage implementation: "badger" (the default, an
	// embedded database in Dir, for one machine) or "postgres" (a shared
	// PostgreSQL database, for several replicas; see Postgres).
	Backend string `koanf:"backend"`
	// Dir is the directory the store keeps its files in, created if
	// missing. Only one toolgate process can use it at a time. With the
	// postgres backend it holds only local files (the admin token, the
	// plugin compilation cache). The default is "./data".
	Dir string `koanf:"dir"`
	// EncryptionKey, when set, encrypts the data at rest with AES. It is 16,
	// 24 or 32 bytes (AES-128, -192 or -256) written either as hex (32, 48
	// or 64 hex digits) or as standard base64 (padding optional). Empty
	// (the default) stores data unencrypted. See [StoreConfig.EncryptionKeyBytes].
	EncryptionKey Secret `koanf:"encryption_key"`
	// SyncWrites makes every write reach the disk before it is
	// acknowledged, so nothing is lost on a crash or power cut. The default
	// is true.
	SyncWrites bool `koanf:"sync_writes"`
	// GCInterval is how often expired records are removed and space is
	// reclaimed. With the postgres backend one replica at a time does it.
	// The default is 5m.
	GCInterval time.Duration `koanf:"gc_interval"`
	// Postgres configures the "postgres" backend; the other backends
	// ignore it.
	Postgres PostgresConfig `koanf:"postgres"`
}

// PostgresConfig configures the PostgreSQL store backend.
type PostgresConfig struct {
	// URL is the database to use, as postgres://user:password@host:port/db
	// (environment variable TOOLGATE_STORE_POSTGRES_URL); query parameters
	// such as sslmode are passed to the driver. Required when
	// store.backend is "postgres". toolgate creates and migrates its
	// tables itself. It may hold a password, so it is a secret: never
	// logged and redacted by `toolgate config`. Empty by default.
	URL Secret `koanf:"url"`
	// MaxConns is the most connections one toolgate process opens to the
	// database (one more listens for other replicas' changes), between 1
	// and 1000. The default is 10.
	MaxConns int `koanf:"max_conns"`
}

// AuthConfig configures sign-in.
type AuthConfig struct {
	// Mode is "proxy" (the default): toolgate is the OAuth authorization
	// server MCP clients see and AuthKit is its upstream identity provider;
	// or "authkit": AuthKit itself is the authorization server and toolgate
	// only verifies AuthKit's access tokens (production mode only).
	Mode string `koanf:"mode"`
	// WorkOSClientID is the WorkOS client ID (environment variable
	// WORKOS_CLIENT_ID). Setting it switches toolgate to production mode;
	// left empty (the default) toolgate runs the embedded development
	// AuthKit.
	WorkOSClientID string `koanf:"workos_client_id"`
	// WorkOSAPIKey is the WorkOS API key (environment variable
	// WORKOS_CLIENT_SECRET). Required in production mode.
	WorkOSAPIKey Secret `koanf:"workos_api_key"`
	// WorkOSWebhookSecret is the signing secret WorkOS shows for
	// toolgate's webhook endpoint (public_url + "/webhooks/workos")
	// (environment variable WORKOS_WEBHOOK_SECRET). When set, in
	// production mode, toolgate serves that endpoint and applies the
	// events it receives (ended sessions, deleted users, membership, role
	// and permission changes) at once; empty (the default), the endpoint
	// is off and those changes reach toolgate at the next refresh. Ignored
	// in development mode, where the development AuthKit delivers its
	// events with a secret generated for each run.
	WorkOSWebhookSecret Secret `koanf:"workos_webhook_secret"`
	// CookieEncryptionKey signs and encrypts browser cookies such as the
	// remembered consent (environment variable COOKIE_ENCRYPTION_KEY). At
	// least 32 bytes; required in production mode. In development mode an
	// empty key means a random key for each run.
	CookieEncryptionKey Secret `koanf:"cookie_encryption_key"`
	// AuthKitDomain is the AuthKit domain as an https URL, for example
	// "https://example.authkit.app". Required when Mode is "authkit" (the
	// issuer of accepted tokens and where their keys are fetched); not
	// read in "proxy" mode. Empty by default.
	AuthKitDomain string `koanf:"authkit_domain"`
	// WorkOSAPIURL overrides the base URL of the WorkOS API. Empty (the
	// default) uses WorkOS's own; in development mode the embedded AuthKit's
	// URL is used.
	WorkOSAPIURL string `koanf:"workos_api_url"`
	// AccessTokenTTL is how long an access token we issue stays valid,
	// between 1m and 24h. The default is 1h.
	AccessTokenTTL time.Duration `koanf:"access_token_ttl"`
	// RefreshTokenTTL is how long a refresh token we issue stays valid,
	// between 1h and 8760h (a year), and longer than AccessTokenTTL. The
	// default is 720h (30 days).
	RefreshTokenTTL time.Duration `koanf:"refresh_token_ttl"`
	// CodeTTL is how long an authorization code stays valid, between 10s
	// and 10m. The default is 60s.
	CodeTTL time.Duration `koanf:"code_ttl"`
	// SignInTTL is how long a user has to finish signing in at AuthKit
	// after approving a client on the consent page, between 1m and 1h.
	// The default is 10m.
	SignInTTL time.Duration `koanf:"sign_in_ttl"`
	// ClientTTL is how long a dynamically registered client that is never
	// used stays registered, between 1h and 8760h. The default is 720h.
	ClientTTL time.Duration `koanf:"client_ttl"`
	// ConsentTTL is how long a browser remembers that its user approved a
	// client, so the consent page is skipped, between 1h and 8760h. The
	// default is 720h.
	ConsentTTL time.Duration `koanf:"consent_ttl"`
	// TokenCacheTTL is the longest a verified access token is served from
	// memory before the store (or, in "authkit" mode, the JWT check) is
	// consulted again, between 1s and 1h. Revocations made through this
	// server or the admin endpoint take effect at once regardless. The
	// default is 1m.
	TokenCacheTTL time.Duration `koanf:"token_cache_ttl"`
	// DisableRegistration turns off dynamic client registration (RFC
	// 7591): /register answers 404 and the metadata does not advertise
	// it. Most MCP clients need registration. The default is false.
	DisableRegistration bool `koanf:"disable_registration"`
	// DisableCIMD turns off Client ID Metadata Documents (a client_id
	// that is an https URL). The default is false (accepted).
	DisableCIMD bool `koanf:"disable_cimd"`
	// CIMDAllowLoopback lets client metadata documents be fetched from
	// loopback addresses, for developing a client locally. It only takes
	// effect when public_url's host is itself loopback. The default is
	// false.
	CIMDAllowLoopback bool `koanf:"cimd_allow_loopback"`
	// RateLimit is how many requests a minute one client address may make
	// to each of /register, /authorize, /callback and /token before it is
	// answered 429 with Retry-After, between 0 and 100000; 0 turns the
	// per-address limit off. The default is 300.
	RateLimit int `koanf:"rate_limit"`
	// RateLimitBurst is how many of those requests one address may make at
	// once before RateLimit paces it, between 1 and 10000. The default is
	// 60.
	RateLimitBurst int `koanf:"rate_limit_burst"`
	// DevAccessTokenTTL is how long the development AuthKit's access tokens
	// live, as the access token duration set in the WorkOS dashboard does
	// for AuthKit's, between 1s and 24h. toolgate's own access tokens never
	// outlive the AuthKit token behind them, so a short value shows how
	// ended sessions and permission changes reach clients. Ignored in
	// production mode. The default is 5m, WorkOS's default.
	DevAccessTokenTTL time.Duration `koanf:"dev_access_token_ttl"`
	// DevUsers are the users the development AuthKit's login page offers.
	// They are ignored in production mode. The default is alice@example.com
	// (role admin, permission image_generation) and bob@example.com (role
	// member, no permissions), both in organization "Acme".
	DevUsers []DevUser `koanf:"dev_users"`
}

// DevUser is one user of the development AuthKit.
type DevUser struct {
	// Email is the user's email address; it must be unique among DevUsers.
	Email string `koanf:"email"`
	// FirstName is the user's given name; optional.
	FirstName string `koanf:"first_name"`
	// LastName is the user's family name; optional.
	LastName string `koanf:"last_name"`
	// Role is the user's role in Organization, for example "admin".
	Role string `koanf:"role"`
	// Permissions are the permission slugs AuthKit would put in the access
	// token, for example "image_generation".
	Permissions []string `koanf:"permissions"`
	// Organization is the name of the user's organization; optional.
	Organization string `koanf:"organization"`
}

// PluginsConfig configures the WebAssembly plugin host.
type PluginsConfig struct {
	// Config is the path of plugins.toml, the operator's plugin list with
	// grants and permission rules. The default is "plugins.toml".
	Config string `koanf:"config"`
	// Dir is the drop-in folder of .wasm plugins. The default is
	// "plugins/dist".
	Dir string `koanf:"dir"`
	// Watch reloads plugins when Dir or the plugins file changes, without a
	// restart. The default is true.
	Watch bool `koanf:"watch"`
	// PoolSize is the most warm instances kept per plugin, between 0 and
	// 1024; 0 (the default) means GOMAXPROCS.
	PoolSize int `koanf:"pool_size"`
	// CacheDir is where compiled plugins are cached between runs. Empty
	// (the default) means <store.dir>/wasm-cache. See [Config.PluginCacheDir].
	CacheDir string `koanf:"cache_dir"`
	// MaxQueue is how many calls may wait for a free instance of one plugin
	// once pool_size calls run; one more is answered at once with a tool
	// error saying the plugin is busy, between 0 and 100000 (0: no call
	// waits). The default is 64.
	MaxQueue int `koanf:"max_queue"`
	// QueueTimeout is how long a call waits for a free instance before it
	// is answered busy, between 1ms and 10m (a tool's own timeout still
	// applies when shorter). The default is 10s.
	QueueTimeout time.Duration `koanf:"queue_timeout"`
	// IdleInstanceTTL is how long a plugin's warm instances beyond the
	// first may stay idle before they are closed, between 1s and 24h: a
	// burst grows a pool to pool_size, and the quiet after it shrinks it
	// back to one warm instance per plugin. 0 keeps every warm instance
	// (the pool never shrinks). The default is 30s.
	IdleInstanceTTL time.Duration `koanf:"idle_instance_ttl"`
}

// MCPConfig configures the MCP endpoint.
type MCPConfig struct {
	// HideDenied makes a tools/call of a tool the caller may not use
	// answer as an unknown tool, instead of a tool error naming what is
	// missing. tools/list never shows such tools either way. The default
	// is false.
	HideDenied bool `koanf:"hide_denied"`
	// SessionIdleTimeout closes a stateful session (2025-06-18 and
	// 2025-11-25 clients, and SSE) after this much idle time, between 1m
	// and 24h. The default is "30m".
	SessionIdleTimeout time.Duration `koanf:"session_idle_timeout"`
	// MaxSessionsPerUser bounds the stateful sessions one user has open,
	// between 1 and 10000; opening one more closes that user's oldest. The
	// default is 32.
	MaxSessionsPerUser int `koanf:"max_sessions_per_user"`
	// ToolCallsPerMinute is how many tools/call requests one user may make
	// a minute across all their sessions, between 0 and 1000000; a call
	// beyond it is a tool error saying when to retry (audit outcome
	// "rate_limited"). 0 turns the limit off. The default is 600.
	ToolCallsPerMinute int `koanf:"tool_calls_per_minute"`
	// ToolCallBurst is how many calls one user may make at once before
	// ToolCallsPerMinute paces them, between 1 and 100000. The default is
	// 60.
	ToolCallBurst int `koanf:"tool_call_burst"`
	// AuditRetention is how long audit records (one per tool call and per
	// denial) are kept, between 1h and 87600h (ten years). The default is
	// "2160h" (90 days).
	AuditRetention time.Duration `koanf:"audit_retention"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Server: ServerConfig{
			Listen:            "127.0.0.1:8788",
			PublicURL:         "http://localhost:8788",
			ShutdownTimeout:   15 * time.Second,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      1 << 20,
			AllowedHosts:      []string{},
			AllowedOrigins:    []string{},
			AdminListen:       "127.0.0.1:8789",
			TrustedProxies:    []string{},
		},
		Log: LogConfig{Level: "info", Format: "auto"},
		Store: StoreConfig{
			Backend:    "badger",
			Dir:        "./data",
			SyncWrites: true,
			GCInterval: 5 * time.Minute,
			Postgres:   PostgresConfig{MaxConns: 10},
		},
		Auth: AuthConfig{
			Mode:              "proxy",
			AccessTokenTTL:    time.Hour,
			RefreshTokenTTL:   720 * time.Hour,
			CodeTTL:           60 * time.Second,
			SignInTTL:         10 * time.Minute,
			ClientTTL:         720 * time.Hour,
			ConsentTTL:        720 * time.Hour,
			TokenCacheTTL:     time.Minute,
			RateLimit:         300,
			RateLimitBurst:    60,
			DevAccessTokenTTL: 5 * time.Minute,
			DevUsers: []DevUser{
				{Email: "alice@example.com", FirstName: "Alice", LastName: "Example", Role: "admin", Permissions: []string{"image_generation"}, Organization: "Acme"},
				{Email: "bob@example.com", FirstName: "Bob", LastName: "Example", Role: "member", Permissions: []string{}, Organization: "Acme"},
			},
		},
		Plugins: PluginsConfig{
			Config:          "plugins.toml",
			Dir:             "plugins/dist",
			Watch:           true,
			MaxQueue:        64,
			QueueTimeout:    10 * time.Second,
			IdleInstanceTTL: 30 * time.Second,
		},
		MCP: MCPConfig{
			SessionIdleTimeout: 30 * time.Minute,
			MaxSessionsPerUser: 32,
			ToolCallsPerMinute: 600,
			ToolCallBurst:      60,
			AuditRetention:     90 * 24 * time.Hour,
		},
	}
}

// Production reports whether toolgate runs against real WorkOS, which is
// the case exactly when a WorkOS client ID is configured. Otherwise it runs
// in development mode with the embedded development AuthKit.
func (c *Config) Production() bool { return c.Auth.WorkOSClientID != "" }

// AllowedHosts returns the effective Host header allowlist: the configured
// server.allowed_hosts, or when that is empty the host of server.public_url
// plus, if server.listen is a loopback address, localhost, 127.0.0.1 and
// [::1] with the listen port.
func (c *Config) AllowedHosts() []string {
	if len(c.Server.AllowedHosts) > 0 {
		return append([]string(nil), c.Server.AllowedHosts...)
	}
	var hosts []string
	if u, err := url.Parse(c.Server.PublicURL); err == nil && u.Host != "" {
		hosts = append(hosts, strings.ToLower(u.Host))
	}
	if host, port, err := net.SplitHostPort(c.Server.Listen); err == nil && isLoopbackHost(host) {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			hp := net.JoinHostPort(h, port)
			if !contains(hosts, hp) {
				hosts = append(hosts, hp)
			}
		}
	}
	return hosts
}

// AllowedOrigins returns the effective browser-origin allowlist: the
// configured server.allowed_origins, or when that is empty the origin of
// server.public_url.
func (c *Config) AllowedOrigins() []string {
	if len(c.Server.AllowedOrigins) > 0 {
		return append([]string(nil), c.Server.AllowedOrigins...)
	}
	u, err := url.Parse(c.Server.PublicURL)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{strings.ToLower(u.Scheme + "://" + u.Host)}
}

// TrustedProxyPrefixes returns server.trusted_proxies as prefixes; a
// single address is a prefix of its full length. Entries are validated at
// load, so only a Config built by hand can hold one that does not parse,
// which is skipped.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.Server.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseProxy reads a trusted proxy entry: a CIDR prefix or one address.
func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parse prefix: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse address: %w", err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q has a zone", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// PluginCacheDir returns the effective compilation-cache directory:
// plugins.cache_dir, or <store.dir>/wasm-cache when that is empty.
func (c *Config) PluginCacheDir() string {
	if c.Plugins.CacheDir != "" {
		return c.Plugins.CacheDir
	}
	return filepath.Join(c.Store.Dir, "wasm-cache")
}

// isLoopbackHost reports whether host (no port) names the local machine
// only: "localhost" or a loopback IP address. An empty host (all
// interfaces) is not loopback.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackListen reports whether a host:port listen address accepts
// connections from the local machine only.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// formatDuration writes d the way people write it in a config file:
// "720h" rather than "720h0m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// quote renders a string value for an error message on one line.
func quote(s string) string { return strconv.Quote(s) }

// displayValue renders any decoded value for an error message on one line.
func displayValue(v any) string {
	switch v := v.(type) {
	case string:
		return quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = displayValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		return "{...}"
	default:
		q := quote(fmt.Sprint(v)) // escapes newlines and control characters
		return q[1 : len(q)-1]
	}
}
