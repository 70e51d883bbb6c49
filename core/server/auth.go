package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/toolgate/toolgate/core/auth"
	"github.com/toolgate/toolgate/core/auth/admin"
	"github.com/toolgate/toolgate/core/auth/authkit"
	"github.com/toolgate/toolgate/core/auth/devauthkit"
	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store"
)

// Paths of the protected MCP endpoints.
const (
	PathMCP = auth.PathMCP
	PathSSE = auth.PathSSE
)

// guardian is what both sign-in modes provide: their public routes
// (metadata, and the OAuth endpoints in proxy mode) and the bearer check
// in front of a protected resource. *auth.Server and *auth.ResourceServer
// implement it.
type guardian interface {
	Mount(mux *http.ServeMux)
	Protect(path string, next http.Handler) http.Handler
	// WebhookHandler serves auth.PathWorkOSWebhook: WorkOS events that end
	// sessions or change permissions, applied at once.
	WebhookHandler(v auth.WebhookVerifier) http.Handler
}

// authParts is what setupAuth built.
type authParts struct {
	guard    guardian
	upstream *authkit.Upstream
	dev      *devauthkit.Server // nil in production
	close    func() error       // auth.Server.Close; nil in resource-server mode
	// invalidate drops bearer-cache entries a revocation by the admin
	// endpoint made stale (auth.Server.Invalidate); nil in resource-server
	// mode, which has no grants.
	invalidate func(store.Change)
}

// authOptions are the composition root's test seams.
type authOptions struct {
	// devKey, when not nil, signs the development AuthKit's tokens instead
	// of a freshly generated key (tests share one to stay fast).
	devKey *rsa.PrivateKey
}

// setupAuth builds sign-in for cfg: in development mode the embedded
// development AuthKit as the upstream, in production WorkOS AuthKit; in
// proxy mode toolgate's own authorization server in front of it, in
// authkit mode the resource-server check of AuthKit's tokens. It mounts
// the public routes on mux.
func setupAuth(cfg config.Config, st store.Store, mux *http.ServeMux, logger *slog.Logger, opts authOptions) (*authParts, error) {
	a := cfg.Auth
	public := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	parts := &authParts{}
	var err error
	// webhookSecret, when set, turns on auth.PathWorkOSWebhook: the
	// operator's in production, a secret of this run's own in development,
	// where the development AuthKit delivers its events to us.
	webhookSecret := a.WorkOSWebhookSecret.Reveal()
	if cfg.Production() {
		kc := authkit.Config{
			ClientID:   a.WorkOSClientID,
			APIKey:     a.WorkOSAPIKey.Reveal(),
			APIBaseURL: a.WorkOSAPIURL,
			Logger:     logger.With("component", "authkit"),
		}
		if a.Mode == "authkit" {
			domain := strings.TrimSuffix(a.AuthKitDomain, "/")
			kc.Issuer = domain
			kc.JWKSURL = domain + "/oauth2/jwks"
		}
		if parts.upstream, err = authkit.New(kc); err != nil {
			return nil, fmt.Errorf("set up WorkOS AuthKit: %w", err)
		}
	} else {
		if err := devauthkit.CheckLoopback(cfg.Server.Listen); err != nil {
			return nil, fmt.Errorf("server.listen: %w", err)
		}
		// The server calls its own development AuthKit in plain HTTP on
		// server.listen, under the name of public_url.
		if !strings.HasPrefix(public, "http://") {
			return nil, fmt.Errorf("server.public_url %q must be an http:// loopback URL in development mode: the development AuthKit is served in plain HTTP on server.listen", public)
		}
		webhookSecret = "whsec_dev_" + rand.Text()
		users := make([]devauthkit.User, len(a.DevUsers))
		for i, u := range a.DevUsers {
			users[i] = devauthkit.User{
				Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
				Role: u.Role, Permissions: u.Permissions, Organization: u.Organization,
			}
		}
		dev, err := devauthkit.New(devauthkit.Config{
			ListenAddr:     cfg.Server.Listen,
			BaseURL:        public + devauthkit.MountPath,
			RedirectURIs:   []string{public + auth.PathCallback},
			Users:          users,
			Key:            opts.devKey,
			AccessTokenTTL: a.DevAccessTokenTTL,
			Logger:         logger.With("component", "devauthkit"),
			WebhookURL:     public + auth.PathWorkOSWebhook,
			WebhookSecret:  webhookSecret,
			WebhookClient:  selfClient(cfg.Server.Listen),
		})
		if err != nil {
			return nil, fmt.Errorf("start the development AuthKit (server.public_url must be a loopback URL in development mode): %w", err)
		}
		parts.dev = dev
		mux.Handle(devauthkit.MountPath+"/", http.StripPrefix(devauthkit.MountPath, dev))
		parts.upstream, err = authkit.New(authkit.Config{
			ClientID:   dev.ClientID(),
			APIKey:     dev.APIKey(),
			APIBaseURL: dev.BaseURL(),
			HTTPClient: selfClient(cfg.Server.Listen),
			Logger:     logger.With("component", "authkit"),
		})
		if err != nil {
			return nil, fmt.Errorf("set up the development AuthKit client: %w", err)
		}
	}

	if a.Mode == "authkit" {
		rs, err := auth.NewResourceServer(auth.ResourceServerConfig{
			PublicURL:           public,
			AuthorizationServer: a.AuthKitDomain,
			Permissions:         parts.upstream, // organization membership, for tokens without a permissions claim
			CacheTTL:            a.TokenCacheTTL,
			Logger:              logger.With("component", "auth"),
		}, parts.upstream)
		if err != nil {
			return nil, err
		}
		parts.guard = rs
	} else {
		key := []byte(a.CookieEncryptionKey.Reveal())
		if len(key) == 0 && !cfg.Production() {
			key = make([]byte, auth.MinCookieKeyLen)
			_, _ = rand.Read(key) // never fails (crypto/rand)
			logger.Info("auth.cookie_encryption_key is empty: using a random key for this run; remembered consents and stored upstream sessions do not survive a restart")
		}
		srv, err := auth.New(auth.Config{
			PublicURL:           public,
			CookieKey:           key,
			AccessTokenTTL:      a.AccessTokenTTL,
			RefreshTokenTTL:     a.RefreshTokenTTL,
			CodeTTL:             a.CodeTTL,
			PendingTTL:          a.SignInTTL,
			ClientTTL:           a.ClientTTL,
			ConsentTTL:          a.ConsentTTL,
			CacheTTL:            a.TokenCacheTTL,
			DisableRegistration: a.DisableRegistration,
			DisableCIMD:         a.DisableCIMD,
			CIMDAllowLoopback:   a.CIMDAllowLoopback,
			IPRateLimit:         a.RateLimit,
			IPRateBurst:         a.RateLimitBurst,
			TrustedProxies:      cfg.TrustedProxyPrefixes(),
		}, st, parts.upstream, logger.With("component", "auth"))
		if err != nil {
			return nil, err
		}
		parts.guard = srv
		parts.close = srv.Close
		parts.invalidate = srv.Invalidate
	}
	parts.guard.Mount(mux)
	if webhookSecret != "" {
		v, err := authkit.NewWebhookVerifier(webhookSecret, nil)
		if err != nil {
			return nil, fmt.Errorf("set up the WorkOS webhook endpoint: %w", err)
		}
		mux.Handle(auth.PathWorkOSWebhook, parts.guard.WebhookHandler(v))
	}
	return parts, nil
}

// selfClient is the HTTP client the upstream client uses to reach the
// development AuthKit mounted on our own listener. It dials listen for
// every request, whatever public_url's host resolves to (localhost may
// resolve to ::1 first while we listen on 127.0.0.1), and never uses a
// proxy from the environment.
func selfClient(listen string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, listen)
			},
			MaxIdleConns:    4,
			IdleConnTimeout: 90 * time.Second,
		},
	}
}

// unavailableMCP answers while no MCP endpoint is mounted: the bearer
// check ran, but there is nothing behind it.
func unavailableMCP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "the MCP endpoint is not available in this build"})
}

// SetMCPHandler sets what serves /mcp and /sse behind the bearer check
// (the verified caller is in the request context; see auth.CallerFromContext).
// A nil handler keeps the current one. Until it is called both answer 503.
// It is safe to call at any time; requests already running finish with
// the handler they started with.
func (s *Server) SetMCPHandler(mcp, sse http.Handler) {
	if mcp != nil {
		s.mcpHandler.Store(&mcp)
	}
	if sse != nil {
		s.sseHandler.Store(&sse)
	}
}

// mountMCP mounts /mcp and /sse behind the bearer check.
func (s *Server) mountMCP() {
	if s.mcpHandler.Load() == nil {
		var placeholder http.Handler = http.HandlerFunc(unavailableMCP)
		s.mcpHandler.Store(&placeholder)
		s.sseHandler.Store(&placeholder)
	}
	s.mux.Handle(PathMCP, s.mcpGuard(s.auth.guard.Protect(PathMCP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*s.mcpHandler.Load()).ServeHTTP(w, r)
	}))))
	s.mux.Handle(PathSSE, s.mcpGuard(s.auth.guard.Protect(PathSSE, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*s.sseHandler.Load()).ServeHTTP(w, r)
	}))))
}

// listenAdmin opens the operator endpoint's listener and builds its
// server, when server.admin_listen is set.
func (s *Server) listenAdmin(ctx context.Context) error {
	addr := s.cfg.Server.AdminListen
	if addr == "" {
		return nil
	}
	if !config.IsLoopbackListen(addr) {
		return fmt.Errorf("server.admin_listen %q is not a loopback address", addr)
	}
	tok, err := admin.LoadOrCreateToken(s.cfg.Store.Dir)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	h, err := admin.NewHandler(admin.Config{Token: tok, Sessions: s.auth.upstream, Invalidate: s.auth.invalidate, Logger: s.log.With("component", "admin"),
		Debug: s.debugHandler()}, s.store)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("admin endpoint: listen on %s (set server.admin_listen to another port, or to \"\" to disable it): %w", addr, err)
	}
	s.adminLn = ln
	s.adminSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// AdminAddr returns the address the operator endpoint listens on, or ""
// when it is disabled.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// DevAuthKit returns the embedded development AuthKit, or nil in
// production. Tests and tools use it to play the upstream's part: change a
// dev user's permissions (SetPermissions) or end their AuthKit sessions
// (EndSessions), as an administrator would in the WorkOS dashboard.
func (s *Server) DevAuthKit() *devauthkit.Server {
	return s.auth.dev
}

// ForListener returns cfg adjusted to the listener actually opened at
// addr: server.listen becomes addr, and when the configured port was 0
// and public_url's host is a loopback name, public_url takes the real
// port (port 0 picks a free port, which public_url cannot name in
// advance). Run applies it; callers of New with their own listener
// should too.
func ForListener(cfg config.Config, addr net.Addr) config.Config {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return cfg
	}
	_, port, err := net.SplitHostPort(cfg.Server.Listen)
	cfg.Server.Listen = tcp.String()
	if err != nil || port != "0" {
		return cfg
	}
	u, err := url.Parse(cfg.Server.PublicURL)
	if err != nil || u.Host == "" || !config.IsLoopbackListen(net.JoinHostPort(u.Hostname(), "0")) {
		return cfg
	}
	u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(tcp.Port))
	cfg.Server.PublicURL = u.String()
	return cfg
}
