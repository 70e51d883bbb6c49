// Package server is toolgate's composition root: it opens the store, owns
// the metrics registry and the readiness checks, mounts every HTTP route
// and runs the HTTP server until its context ends, then drains in-flight
// requests and closes what it opened.
//
// It is the only core package that picks concrete implementations (the
// store backend today; the auth upstream, the plugin host and the tool gate
// as they land), and nothing but cmd/toolgate imports it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/mcpserver"
	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

// ErrDataDirLocked is returned (wrapped) by [New] and [Run] when another
// process holds the store's data directory.
var ErrDataDirLocked = badgerstore.ErrLocked

// storeOpener opens a store backend from the configuration.
type storeOpener func(ctx context.Context, cfg config.StoreConfig, logger *slog.Logger) (store.Store, error)

// backends maps store.backend to its implementation. Adding a backend is
// one entry here and one allowed value in core/config.
var backends = map[string]storeOpener{
	"badger":   openBadger,
	"postgres": openPostgres,
}

func openBadger(ctx context.Context, cfg config.StoreConfig, logger *slog.Logger) (store.Store, error) {
	key, err := cfg.EncryptionKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("store.encryption_key: %w", err)
	}
	s, err := badgerstore.Open(ctx, badgerstore.Options{
		Dir:           cfg.Dir,
		EncryptionKey: key,
		SyncWrites:    cfg.SyncWrites,
		GCInterval:    cfg.GCInterval,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReadinessCheck is one condition /readyz requires. Check must return
// quickly; it runs with a deadline of [ReadinessTimeout].
type ReadinessCheck struct {
	// Name identifies the check in the /readyz body, for example "store".
	Name string
	// Check returns nil when the component is ready.
	Check func(ctx context.Context) error
}

// ReadinessTimeout bounds each readiness check.
const ReadinessTimeout = 2 * time.Second

// Server is toolgate's HTTP server with everything it serves. Build it
// with [New], then call [Server.Serve] or use [Run].
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   store.Store
	plugins *plugin.Host
	mcp     *mcpserver.Server // the MCP endpoint on /mcp and /sse

	// replica is this replica's record in the store's replica registry;
	// pluginSet is the loaded plugin set's digest for /readyz and metrics,
	// kept current through unsubPlugins' subscription to the plugin host.
	replica      *replica.Registry
	pluginSet    *pluginSetState
	unsubPlugins func()

	reg     *prometheus.Registry
	metrics *httpMetrics
	mux     *http.ServeMux
	handler http.Handler

	mu     sync.Mutex
	checks []ReadinessCheck

	// auth is sign-in: the upstream, the development AuthKit in dev mode,
	// and the guard of /mcp and /sse.
	auth *authParts
	// mcpHandler and sseHandler serve /mcp and /sse behind the bearer
	// check; SetMCPHandler replaces the 503 placeholders.
	mcpHandler atomic.Pointer[http.Handler]
	sseHandler atomic.Pointer[http.Handler]
	// adminLn and adminSrv are the operator endpoint (nil when
	// server.admin_listen is empty).
	adminLn  net.Listener
	adminSrv *http.Server

	// allowedHosts is the Host allowlist, a map[string]bool; Serve replaces
	// it once the real listen port is known.
	allowedHosts atomic.Pointer[map[string]bool]
	draining     atomic.Bool
	closeOnce    sync.Once
	closeErr     error

	// testHookShutdown, when set, runs as soon as a graceful shutdown
	// starts (tests synchronise on it).
	testHookShutdown func()
}

// New opens the configured store, sets up sign-in (the development
// AuthKit or WorkOS AuthKit) and the operator endpoint on
// server.admin_listen, and builds the server. server.listen must be the
// address Serve will be given (see [ForListener] for port 0): in
// development mode the server calls its own development AuthKit there.
// The caller must eventually call Serve (which closes everything when it
// returns) or Close. A data directory held by another process returns an
// error wrapping [ErrDataDirLocked].
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Server, error) {
	open, ok := backends[cfg.Store.Backend]
	if !ok {
		return nil, fmt.Errorf("store.backend %q is not available", cfg.Store.Backend)
	}
	return newServer(ctx, cfg, logger, open, authOptions{})
}

func newServer(ctx context.Context, cfg config.Config, logger *slog.Logger, open storeOpener, opts authOptions) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := open(ctx, cfg.Store, logger.With("component", "store"))
	if err != nil {
		if cfg.Store.Backend == "postgres" {
			return nil, fmt.Errorf("open the postgres store: %w", err)
		}
		return nil, fmt.Errorf("open the store in %q: %w", cfg.Store.Dir, err)
	}
	s := &Server{
		cfg:   cfg,
		log:   logger,
		store: st,
		reg:   prometheus.NewRegistry(),
		mux:   http.NewServeMux(),
	}
	s.setAllowedHosts(cfg.AllowedHosts())
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	s.metrics = newHTTPMetrics(s.reg)
	s.AddReadinessCheck("store", st.Ping)
	host, err := plugin.New(ctx, plugin.Config{
		CacheDir:        cfg.PluginCacheDir(),
		PluginsFile:     cfg.Plugins.Config,
		DropInDir:       cfg.Plugins.Dir,
		Watch:           cfg.Plugins.Watch,
		PoolSize:        cfg.Plugins.PoolSize,
		MaxQueue:        maxQueue(cfg.Plugins.MaxQueue),
		QueueTimeout:    cfg.Plugins.QueueTimeout,
		IdleInstanceTTL: idleInstanceTTL(cfg.Plugins.IdleInstanceTTL),
		KV:              st,
		Logger:          logger.With("component", "plugins"),
		Registerer:      s.reg,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("load plugins: %w", err), st.Close())
	}
	s.plugins = host
	s.AddReadinessCheck("plugins", func(context.Context) error {
		if !host.Ready() {
			return errors.New("no plugin set loaded")
		}
		return nil
	})
	if err := s.setupReplica(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if s.auth, err = setupAuth(cfg, st, s.mux, logger, opts); err != nil {
		return nil, errors.Join(fmt.Errorf("set up sign-in: %w", err), s.Close())
	}
	if err := s.setupMCP(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if err := s.listenAdmin(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.routes()
	s.handler = s.middleware(s.mux)
	return s, nil
}

// routes mounts the operational routes and /mcp and /sse behind the
// bearer check on s.mux; setupAuth has mounted the sign-in routes (OAuth
// endpoints, /.well-known metadata, the development AuthKit).
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	s.mountMCP()
}

// Registerer is where other components register their Prometheus
// collectors; they are served on /metrics.
func (s *Server) Registerer() prometheus.Registerer { return s.reg }

// AddReadinessCheck adds a condition /readyz requires, for example "plugin
// set loaded". It is safe to call while serving.
func (s *Server) AddReadinessCheck(name string, check func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, ReadinessCheck{Name: name, Check: check})
}

// Handler returns the server's whole HTTP handler, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on server.listen, builds the server from cfg (adjusted by
// [ForListener]) and serves until ctx ends; see [Server.Serve].
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}
	s, err := New(ctx, ForListener(cfg, ln.Addr()), logger)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	return s.Serve(ctx, ln)
}

// Serve answers requests on ln until ctx ends. Then it stops accepting
// connections, waits up to server.shutdown_timeout for in-flight requests
// to finish, and closes the store. It returns nil after a clean drain, and
// an error if requests had to be cut off or closing failed. Serve closes
// ln and must be called at most once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && len(s.cfg.Server.AllowedHosts) == 0 {
		// With port 0 the real port is only known now.
		c := s.cfg
		c.Server.Listen = tcp.String()
		s.setAllowedHosts(c.AllowedHosts())
	}
	// No ReadTimeout or WriteTimeout: /sse and streamable-HTTP responses
	// stay open for as long as a client listens. Slow clients are bounded
	// by ReadHeaderTimeout, the body limit and IdleTimeout instead.
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.Server.IdleTimeout,
		MaxHeaderBytes:    s.cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	mode := "development"
	if s.cfg.Production() {
		mode = "production"
	}
	s.log.Info("toolgate listening",
		"addr", ln.Addr().String(),
		"mode", mode,
		"auth_mode", s.cfg.Auth.Mode,
		"public_url", s.cfg.Server.PublicURL,
		"mcp", s.cfg.Server.PublicURL+PathMCP,
		"admin", s.AdminAddr(),
		"healthz", s.cfg.Server.PublicURL+"/healthz",
		"metrics", s.cfg.Server.PublicURL+"/metrics")

	// SIGHUP reloads the plugins. Subscribe before serving, so that once
	// the server has answered anything a SIGHUP is ours (without a
	// subscriber it would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// This replica's heartbeat in the replica registry, until the drain
	// starts: from then on listings no longer show it.
	replicaCtx, stopReplica := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReplica()
	replicaDone := s.runReplica(replicaCtx)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	adminServed := make(chan error, 1)
	if s.adminSrv != nil {
		go func() { adminServed <- s.adminSrv.Serve(s.adminLn) }()
	} else {
		adminServed <- http.ErrServerClosed
	}

	var serveErr error
wait:
	for {
		select {
		case err := <-served:
			// The listener failed before anyone asked us to stop.
			serveErr = fmt.Errorf("serve: %w", err)
			break wait
		case <-hup:
			s.log.Info("SIGHUP: reloading plugins", "file", s.cfg.Plugins.Config, "dir", s.cfg.Plugins.Dir)
			if err := s.Reload(ctx); err == nil {
				s.log.Info("plugins reloaded")
			} // a failed reload is logged by the host, and the old set keeps serving
		case <-ctx.Done():
			s.log.Info("shutting down", "reason", context.Cause(ctx).Error(), "timeout", s.cfg.Server.ShutdownTimeout.String())
			break wait
		}
	}
	s.draining.Store(true)
	stopReplica()
	if s.testHookShutdown != nil {
		srv.RegisterOnShutdown(s.testHookShutdown)
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	if s.mcp != nil {
		// Open MCP streams never finish by themselves: once no tool call
		// runs, close them so the drain does not wait out its deadline.
		srv.RegisterOnShutdown(func() { s.mcp.Drain(drainCtx) })
	}
	start := time.Now()
	if s.adminSrv != nil {
		// Operator requests are short; they share the drain deadline.
		if err := s.adminSrv.Shutdown(drainCtx); err != nil {
			_ = s.adminSrv.Close()
		}
	}
	if err := <-adminServed; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("admin endpoint stopped early", "err", err)
	}
	if err := srv.Shutdown(drainCtx); err != nil {
		s.log.Warn("in-flight requests did not finish in time; closing their connections", "timeout", s.cfg.Server.ShutdownTimeout.String())
		serveErr = errors.Join(serveErr, fmt.Errorf("shutdown: requests still running after %s: %w", s.cfg.Server.ShutdownTimeout, err), srv.Close())
	}
	if serveErr == nil {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("serve: %w", err)
		}
	}
	<-replicaDone // its goodbye uses the store
	if err := s.Close(); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	if serveErr == nil {
		s.log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond).String())
	}
	return serveErr
}

// Close releases what New opened, in order: the admin listener (when
// Serve never ran), sign-in (its store watch), the plugin host, the store.
// Serve calls it after draining; call it yourself only when Serve never
// ran. Calling it again returns the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.unsubPlugins != nil {
			s.unsubPlugins()
		}
		if s.adminLn != nil {
			_ = s.adminLn.Close() // already closed when Serve ran
		}
		if s.auth != nil && s.auth.close != nil {
			if err := s.auth.close(); err != nil {
				s.closeErr = fmt.Errorf("close sign-in: %w", err)
			}
		}
		// The MCP endpoint, then plugins, then the store: a running call
		// may still use the plugins, and both write to the store (audit,
		// kv).
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
		defer cancel()
		if s.mcp != nil {
			if err := s.mcp.Close(ctx); err != nil {
				s.closeErr = errors.Join(s.closeErr, fmt.Errorf("close the MCP endpoint: %w", err))
			}
		}
		if err := s.plugins.Close(ctx); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("close the plugin host: %w", err))
		}
		if err := s.store.Close(); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("close the store: %w", err))
		}
	})
	return s.closeErr
}

// Plugins is the plugin host, for components mounted on the server.
func (s *Server) Plugins() *plugin.Host { return s.plugins }

// Reload re-reads plugins.toml and the drop-in folder and swaps the new
// plugin set in; on error the old set keeps serving. Serve calls it on
// SIGHUP.
func (s *Server) Reload(ctx context.Context) error {
	return s.plugins.Reload(ctx)
}

func (s *Server) setAllowedHosts(hosts []string) {
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		m[normalizeHost(h)] = true
	}
	s.allowedHosts.Store(&m)
}

// maxQueue turns plugins.max_queue into plugin.Config.MaxQueue, where zero
// means the default: the configured 0 ("no call waits") is negative there.
func maxQueue(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// idleInstanceTTL turns plugins.idle_instance_ttl into
// plugin.Config.IdleInstanceTTL, where zero means the default: the
// configured 0 ("keep idle instances") is negative there.
func idleInstanceTTL(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
