package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/gate"
	"github.com/toolgate/toolgate/core/internal/keyedlimit"
	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"
)

// Host is what the MCP server needs from the plugin host; *plugin.Host
// implements it.
type Host interface {
	// Tools returns the current plugin set.
	Tools() plugin.Snapshot
	// Subscribe calls fn after every reload until unsubscribed.
	Subscribe(fn func(plugin.Event)) (unsubscribe func())
	// Call runs one tool call.
	Call(ctx context.Context, tool string, args json.RawMessage, caller abi.Caller, opts plugin.CallOptions) (abi.CallResult, error)
}

var _ Host = (*plugin.Host)(nil)

// Defaults of Config.
const (
	// DefaultMaxRequestBodyBytes bounds a request body: a tool call's
	// arguments may be up to abi.MaxInputBytes, plus room for the envelope.
	DefaultMaxRequestBodyBytes = abi.MaxInputBytes + 64<<10
	// DefaultMaxHeaderBytes bounds the sum of a request's header names and
	// values.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultSessionIdleTimeout closes stateful sessions nobody used for
	// this long.
	DefaultSessionIdleTimeout = 30 * time.Minute
	// DefaultMaxSessionsPerUser bounds the stateful and SSE sessions one
	// user keeps open.
	DefaultMaxSessionsPerUser = 32
	// DefaultAuditRetention is how long audit records are kept.
	DefaultAuditRetention = 90 * 24 * time.Hour
)

// Config configures a Server. Host and CallerFromContext are required.
type Config struct {
	// Host serves the tools.
	Host Host
	// CallerFromContext returns the verified caller of a request, which the
	// bearer middleware in front of the handlers put in its context. A
	// request without one is refused with 401.
	CallerFromContext func(context.Context) (gate.Caller, bool)
	// HideDenied makes a tools/call of a tool the caller may not use answer
	// as an unknown tool (a protocol error), instead of a tool error naming
	// what is missing. tools/list never shows such tools either way.
	HideDenied bool

	// AllowedHosts lists the Host header values requests may carry: "host"
	// (any port) or "host:port", case-insensitive. Empty means: a request
	// that arrived on a loopback address must name a loopback host
	// (localhost, 127.0.0.1, ::1), and any Host is accepted otherwise. Set
	// it to the public host when serving behind a reverse proxy. The entry
	// "*" accepts any Host, for a composition root that checks Host itself
	// in front of these handlers.
	AllowedHosts []string
	// AllowedOrigins lists the browser origins ("scheme://host[:port]")
	// allowed besides the request's own origin. A request whose Origin is
	// neither gets 403; a request without Origin (a non-browser client)
	// passes.
	AllowedOrigins []string
	// MaxRequestBodyBytes bounds request bodies (413 beyond); default
	// DefaultMaxRequestBodyBytes.
	MaxRequestBodyBytes int64
	// MaxHeaderBytes bounds the sum of header name and value lengths (431
	// beyond); default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// SessionIdleTimeout closes a stateful streamable session after this
	// much idle time; default DefaultSessionIdleTimeout.
	SessionIdleTimeout time.Duration
	// MaxSessionsPerUser bounds the stateful streamable and SSE sessions
	// one user has open; opening one more closes that user's oldest.
	// Default DefaultMaxSessionsPerUser.
	MaxSessionsPerUser int
	// SessionIDPrefix starts every session ID this server hands out
	// (Mcp-Session-Id of stateful streamable sessions, sessionid of SSE
	// sessions), before 130 random bits: a replica's name, so a load
	// balancer can send a session's requests to the replica that holds it.
	// It must be visible ASCII without spaces (a header value and a query
	// parameter as it is). Empty (the default): no prefix.
	SessionIDPrefix string
	// ToolCallsPerMinute is how many tools/call requests one user (across
	// all of their sessions and clients) may make a minute; beyond it a
	// call is answered with a tool error saying when to retry, audited
	// with outcome "rate_limited", and the plugin is not called. Zero (the
	// default) or negative means no limit.
	ToolCallsPerMinute int
	// ToolCallBurst is how many calls a user may make at once before
	// ToolCallsPerMinute paces them; default 1 when the limit is on.
	ToolCallBurst int
	// MaxRateLimitedUsers bounds the users whose call budget is tracked
	// at once; default DefaultMaxRateLimitedUsers.
	MaxRateLimitedUsers int

	// Audit stores one record per call and per denial; nil logs them only.
	Audit store.Audit
	// AuditRetention is how long records are kept; default
	// DefaultAuditRetention, negative keeps them forever.
	AuditRetention time.Duration
	// Registerer receives the Prometheus metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives the server's logs and audit lines; default
	// slog.Default().
	Logger *slog.Logger
	// Name and Version identify the server to clients; default "toolgate"
	// and "dev".
	Name, Version string
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Server is the MCP endpoint: one go-sdk server whose tools follow the
// plugin host, filtered and enforced per caller. It is safe for concurrent
// use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	sdkLog  *slog.Logger // the go-sdk's: warnings and errors only
	mcp     *mcp.Server
	metrics *metrics
	audit   *auditor
	limiter *keyedlimit.Limiter // nil without Config.ToolCallsPerMinute

	syncMu sync.Mutex // serialises changes to the registered tools
	tools  atomic.Pointer[toolset]
	unsub  func()

	sessMu   sync.RWMutex
	sessions map[*mcp.ServerSession]*session
	// evicted holds sessions closed for the per-user limit until their
	// Wait returns, so a request still under way cannot re-add them.
	evicted map[*mcp.ServerSession]*session
	byGrant map[string]map[*session]struct{}
	byUser  map[string]map[*session]struct{} // evictable sessions
	seq     uint64

	sse        *sseHandler
	transports transports
	calls      inflight // running tool calls, for Drain
	posts      inflight // POSTs to stateful sessions being answered, for Drain

	closeOnce sync.Once

	// onListChanged, if set (by tests), learns each tracked session's
	// list_changed decision: the session's user and whether it was sent.
	onListChanged func(user string, sent bool)
}

// toolset is the set of tools currently registered on the go-sdk server.
type toolset struct {
	gen    uint64
	byName map[string]*entry
	names  []string // sorted, as the snapshot lists them
}

// entry is one registered tool.
type entry struct {
	tool    plugin.Tool
	mcp     *mcp.Tool
	handler mcp.ToolHandler
	spec    uint64 // digest of plugin and spec: what a client sees
	full    uint64 // digest including rules: when to re-register
}

// session is what the server remembers about a session that can receive
// notifications/tools/list_changed: a stateful streamable session, an SSE
// session, or a 2026-07-28 subscriptions/listen stream.
type session struct {
	grant string // grantKey of the caller that opened it
	user  string // the user who opened it
	seq   uint64 // order of creation, for evicting a user's oldest
	ss    *mcp.ServerSession
	// evictable: a stateful or SSE session, which the server may close
	// (a listen stream ends with its request).
	evictable bool
	mu        sync.Mutex
	caller    gate.Caller
	told      uint64 // fingerprint of the tool list the client last learned
	hasTol    bool
}

// New builds the server and starts following the host's tool set. Close
// stops it.
func New(cfg Config) (*Server, error) {
	if cfg.Host == nil {
		return nil, errors.New("mcpserver: Config.Host is required")
	}
	if cfg.CallerFromContext == nil {
		return nil, errors.New("mcpserver: Config.CallerFromContext is required")
	}
	if cfg.MaxRequestBodyBytes <= 0 {
		cfg.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.MaxSessionsPerUser <= 0 {
		cfg.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if cfg.AuditRetention == 0 {
		cfg.AuditRetention = DefaultAuditRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "toolgate"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hosts, err := parseHosts(cfg.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("mcpserver: %w", err)
	}
	for _, c := range []byte(cfg.SessionIDPrefix) {
		if c <= ' ' || c > '~' || c == '&' || c == '#' || c == '%' || c == '+' || c == '?' {
			return nil, fmt.Errorf("mcpserver: session ID prefix %q: want visible ASCII, without spaces or URL delimiters", cfg.SessionIDPrefix)
		}
	}
	origins, err := parseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("mcpserver: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mcpserver: register metrics: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		sdkLog:   slog.New(minLevel{h: cfg.Logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "go-sdk")}), min: slog.LevelWarn}),
		metrics:  m,
		sessions: map[*mcp.ServerSession]*session{},
		evicted:  map[*mcp.ServerSession]*session{},
		byGrant:  map[string]map[*session]struct{}{},
		byUser:   map[string]map[*session]struct{}{},
	}
	s.audit = newAuditor(cfg.Audit, cfg.AuditRetention, cfg.Logger)
	if cfg.MaxRateLimitedUsers <= 0 {
		s.cfg.MaxRateLimitedUsers = DefaultMaxRateLimitedUsers
	}
	s.limiter = keyedlimit.New(cfg.ToolCallsPerMinute, cfg.ToolCallBurst, s.cfg.MaxRateLimitedUsers, cfg.Now)
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: cfg.Name, Version: cfg.Version}, &mcp.ServerOptions{
		Logger:       s.sdkLog,
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}},
		GetSessionID: s.newSessionID,
	})
	s.mcp.AddReceivingMiddleware(s.receiving)
	s.mcp.AddSendingMiddleware(s.sending)
	s.tools.Store(&toolset{byName: map[string]*entry{}})
	s.sse = newSSEHandler(s)
	s.initTransports(hosts, origins)
	s.unsub = cfg.Host.Subscribe(func(ev plugin.Event) {
		if ev.Err == nil {
			s.sync(ev.Snapshot)
		}
	})
	s.sync(cfg.Host.Tools())
	return s, nil
}

// Close stops following the host, ends the SSE sessions and flushes the
// audit records still queued. It does not close the host.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.unsub()
		s.sse.closeAll()
		err = s.audit.close(ctx)
	})
	return err
}

// sync makes the registered tools match snap. Unchanged tools stay
// registered; the go-sdk debounces the add and remove notifications into
// one notifications/tools/list_changed, which the sending middleware
// forwards to the sessions whose view changed.
func (s *Server) sync(snap plugin.Snapshot) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	old := s.tools.Load()
	if snap.Generation < old.gen {
		return // an older snapshot arriving late
	}
	next := &toolset{gen: snap.Generation, byName: make(map[string]*entry, len(snap.Tools)), names: make([]string, 0, len(snap.Tools))}
	var added []*entry
	for _, t := range snap.Tools {
		spec, full := digests(t)
		if e, ok := old.byName[t.Name]; ok && e.full == full {
			next.byName[t.Name] = e
			next.names = append(next.names, t.Name)
			continue
		}
		e, err := s.newEntry(t, spec, full)
		if err != nil {
			s.log.Error("mcpserver: tool not served", "tool", t.Name, "plugin", t.Plugin, "err", err)
			continue
		}
		if !registers(e) {
			s.log.Error("mcpserver: tool not served: the go-sdk refused its declaration", "tool", t.Name, "plugin", t.Plugin)
			continue
		}
		next.byName[t.Name] = e
		next.names = append(next.names, t.Name)
		added = append(added, e)
	}
	var removed []string
	for _, name := range old.names {
		if _, ok := next.byName[name]; !ok {
			removed = append(removed, name)
		}
	}
	// Publish the rules before the go-sdk lists the new tools.
	s.tools.Store(next)
	if len(removed) > 0 {
		s.mcp.RemoveTools(removed...)
	}
	for _, e := range added {
		s.mcp.AddTool(e.mcp, e.handler)
	}
	if len(added) > 0 || len(removed) > 0 {
		s.log.Info("mcpserver: tool set changed", "generation", snap.Generation, "tools", len(next.names), "added", len(added), "removed", len(removed))
	}
}

// registers reports whether the go-sdk accepts e's declaration. AddTool
// panics on a declaration it refuses (an input schema that is not an
// object, bad parameter-header annotations); a plugin's manifest is
// runtime data, so that must not take the server down. It is checked on a
// throwaway server so the live one only ever sees accepted tools.
func registers(e *entry) (ok bool) {
	probe := mcp.NewServer(&mcp.Implementation{Name: "probe"}, &mcp.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	probe.AddTool(e.mcp, e.handler)
	return true
}

// newEntry builds the go-sdk declaration and handler of a tool.
func (s *Server) newEntry(t plugin.Tool, spec, full uint64) (*entry, error) {
	if len(t.Spec.InputSchema) == 0 {
		return nil, errors.New("no input schema")
	}
	mt := &mcp.Tool{
		Name:        t.Name,
		Title:       t.Spec.Title,
		Description: t.Spec.Description,
		InputSchema: t.Spec.InputSchema,
	}
	if len(t.Spec.OutputSchema) > 0 {
		mt.OutputSchema = t.Spec.OutputSchema
	}
	if a := t.Spec.Annotations; a != nil {
		mt.Annotations = &mcp.ToolAnnotations{ReadOnlyHint: a.ReadOnly, IdempotentHint: a.Idempotent}
		// The MCP defaults of these two are true; a manifest's false is
		// indistinguishable from "not said", so only a true is passed on.
		if a.Destructive {
			mt.Annotations.DestructiveHint = &a.Destructive
		}
		if a.OpenWorld {
			mt.Annotations.OpenWorldHint = &a.OpenWorld
		}
		if t.Spec.Title != "" {
			mt.Annotations.Title = t.Spec.Title
		}
	}
	return &entry{tool: t, mcp: mt, handler: s.toolHandler(t.Name), spec: spec, full: full}, nil
}

// digests returns a hash of what a client sees of a tool and one that
// also covers its rules and limits.
func digests(t plugin.Tool) (spec, full uint64) {
	h := fnv.New64a()
	b, _ := json.Marshal(struct {
		Plugin string
		Spec   abi.Tool
	}{t.Plugin, t.Spec})
	h.Write(b)
	spec = h.Sum64()
	b, _ = json.Marshal(struct {
		Rules  plugin.Rules
		Limits plugin.Limits
	}{t.Rules, t.Limits})
	h.Write(b)
	return spec, h.Sum64()
}

// fingerprint hashes the tool list c sees in ts.
func fingerprint(ts *toolset, c gate.Caller) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	for _, name := range ts.names {
		e := ts.byName[name]
		if !gate.Decide(e.tool.Rules, c).Allowed {
			continue
		}
		h.Write([]byte(name))
		for i := range buf {
			buf[i] = byte(e.spec >> (8 * i))
		}
		h.Write(buf[:])
	}
	return h.Sum64()
}

// sameRulesIdentity reports whether a and b are the same for every rule.
func sameRulesIdentity(a, b gate.Caller) bool {
	if a.OrganizationID != b.OrganizationID || a.Role != b.Role || len(a.Permissions) != len(b.Permissions) {
		return false
	}
	for i := range a.Permissions {
		if a.Permissions[i] != b.Permissions[i] {
			return false
		}
	}
	return true
}

// touch makes the go-sdk announce a tool-list change to every session by
// re-registering one unchanged tool; the sending middleware lets the
// announcement through only to sessions whose view changed. The go-sdk has
// no per-session list_changed call.
func (s *Server) touch() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ts := s.tools.Load()
	if len(ts.names) == 0 {
		return
	}
	e := ts.byName[ts.names[0]]
	s.mcp.AddTool(e.mcp, e.handler)
}

// receiving is the go-sdk receiving middleware: it identifies the caller
// of every request and filters tools/list to what the caller may use.
// tools/call is re-checked in the tool handler itself.
func (s *Server) receiving(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		c, st := s.identify(req)
		if c != nil {
			s.refreshGrant(*c, st)
		}
		if method == "subscriptions/listen" && c != nil && st == nil {
			// A 2026-07-28 listen stream: remembered while it is open, so
			// list_changed reaches it per caller like a session.
			if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
				listen := &session{grant: grantKey(*c), user: c.UserID, caller: *c, told: fingerprint(s.tools.Load(), *c), hasTol: true}
				s.addSession(ss, listen)
				defer s.forget(ss)
			}
		}
		if method != "tools/list" {
			return next(ctx, method, req)
		}
		if c == nil {
			return nil, errNoCaller
		}
		res, err := next(ctx, method, req)
		if err != nil {
			return res, err
		}
		lr, ok := res.(*mcp.ListToolsResult)
		if !ok {
			return res, nil
		}
		ts := s.tools.Load()
		kept := lr.Tools[:0]
		for _, t := range lr.Tools {
			if e, ok := ts.byName[t.Name]; ok && gate.Decide(e.tool.Rules, *c).Allowed {
				kept = append(kept, t)
			}
		}
		lr.Tools = kept
		if st != nil {
			fp := fingerprint(ts, *c)
			st.mu.Lock()
			st.told, st.hasTol = fp, true
			st.mu.Unlock()
		}
		return lr, nil
	}
}

// sending is the go-sdk sending middleware: it drops a
// notifications/tools/list_changed for a session whose list did not
// change since the client last learned it.
func (s *Server) sending(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "notifications/tools/list_changed" {
			return next(ctx, method, req)
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		st := s.sessionOf(ss)
		if st == nil {
			return next(ctx, method, req) // not tracked: always told
		}
		st.mu.Lock()
		fp := fingerprint(s.tools.Load(), st.caller)
		skip := st.hasTol && st.told == fp
		st.told, st.hasTol = fp, true
		user := st.caller.UserID
		st.mu.Unlock()
		if s.onListChanged != nil {
			s.onListChanged(user, !skip)
		}
		if skip {
			s.metrics.listChanged.WithLabelValues("suppressed").Inc()
			return nil, nil
		}
		s.metrics.listChanged.WithLabelValues("sent").Inc()
		return next(ctx, method, req)
	}
}

// errNoCaller answers a request that reached the server without a
// verified caller; the transports refuse those before, so it means a
// wiring mistake.
var errNoCaller = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "no verified caller"}

// unknownTool is the protocol error the go-sdk itself answers for a tool
// it does not know; HideDenied answers denied tools the same way.
func unknownTool(name string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown tool %q", name)}
}

// minLevel passes only records at or above min to h. The go-sdk logs
// every session's connect and disconnect at Info, which for stateless
// requests is one pair per request.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}
