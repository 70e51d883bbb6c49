package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/gate"
	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"

	"github.com/toolgate/toolgate/core/internal/testutil"
)

// testCacheDir is the wazero compilation cache shared with core/plugin's
// tests: wazero keys entries by module content.
var testCacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")

var (
	buildMu   sync.Mutex
	builtWasm = map[string]string{}
	buildErrs = map[string]error{}
)

// buildWasm builds the Go package pkg for wasip1 as a reactor, once per
// test binary, and returns the .wasm path.
func buildWasm(tb testing.TB, name, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtWasm[name]; ok {
		return p
	}
	if err, ok := buildErrs[name]; ok {
		tb.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "toolgate-mcpserver-test-wasm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		tb.Fatal(err)
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		buildErrs[name] = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		tb.Fatal(buildErrs[name])
	}
	p := filepath.Join(dir, name+".wasm")
	if err := os.Rename(tmp.Name(), p); err != nil {
		tb.Fatal(err)
	}
	builtWasm[name] = p
	return p
}

// Test users, by bearer token.
func testUsers() map[string]gate.Caller {
	return map[string]gate.Caller{
		"alice": {UserID: "user_alice", Email: "alice@example.com", OrganizationID: "org_acme", Role: "admin", Permissions: []string{"image_generation"}, ClientID: "client_test", GrantID: "grant_alice"},
		"bob":   {UserID: "user_bob", Email: "bob@example.com", OrganizationID: "org_acme", Role: "member", Permissions: []string{}, ClientID: "client_test", GrantID: "grant_bob"},
	}
}

type callerKey struct{}

// users is the test's stand-in for the bearer middleware: the token is
// the user's name. Permissions can change between requests, as after a
// token refresh.
type users struct {
	mu sync.Mutex
	m  map[string]gate.Caller
}

func (u *users) set(token string, c gate.Caller) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.m[token] = c
}

func (u *users) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var token string
		if _, err := fmt.Sscanf(r.Header.Get("Authorization"), "Bearer %s", &token); err != nil {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		u.mu.Lock()
		c, ok := u.m[token]
		u.mu.Unlock()
		if !ok {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func callerFromContext(ctx context.Context) (gate.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(gate.Caller)
	return c, ok
}

// memAudit is a store.Audit that also hands every record to a channel.
type memAudit struct {
	mu      sync.Mutex
	records []store.AuditRecord
	ch      chan store.AuditRecord
}

func newMemAudit() *memAudit { return &memAudit{ch: make(chan store.AuditRecord, 1024)} }

func (a *memAudit) AppendAudit(_ context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	a.mu.Lock()
	r.ID = fmt.Sprintf("%08d", len(a.records))
	a.records = append(a.records, r)
	a.mu.Unlock()
	a.ch <- r
	return r, nil
}

func (a *memAudit) ListAudit(context.Context, store.AuditQuery) ([]store.AuditRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]store.AuditRecord(nil), a.records...), nil
}

// waitRecord returns the next audit record for tool, failing after a
// generous deadline.
func (a *memAudit) waitRecord(t *testing.T, user, tool string) store.AuditRecord {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-a.ch:
			if r.Tool == tool && r.UserID == user {
				return r
			}
		case <-deadline:
			t.Fatalf("no audit record for %s calling %s", user, tool)
		}
	}
}

// env is a running server over a real plugin host.
type env struct {
	srv    *Server
	host   *plugin.Host
	url    string
	dropIn string
	users  *users
	audit  *memAudit
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// syncBuffer collects log output the test reads while the server runs.
type syncBuffer = testutil.SyncBuffer

// newEnv starts a plugin host serving the gated test plugin (with
// progress and list_tools granted) and a watched drop-in folder, and the
// MCP server over it on an httptest server.
func newEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	gated := buildWasm(t, "gated", "../gate/testdata/gated")
	dropIn := t.TempDir()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := plugin.New(context.Background(), plugin.Config{
		CacheDir: testCacheDir,
		Plugins: &plugin.PluginsFile{
			DropIn:  plugin.DropInAllow,
			Plugins: map[string]plugin.PluginEntry{"gated": {Path: gated, Progress: true, ListTools: true}},
			Dir:     t.TempDir(),
			Name:    "plugins.toml",
		},
		DropInDir: dropIn,
		Watch:     true,
		Debounce:  10 * time.Millisecond,
		Logger:    log,
	})
	if err != nil {
		t.Fatalf("plugin host: %v", err)
	}
	e := &env{host: h, dropIn: dropIn, users: &users{m: testUsers()}, audit: newMemAudit(), reg: prometheus.NewRegistry(), logs: logs}
	cfg := Config{
		Host:              h,
		CallerFromContext: callerFromContext,
		Audit:             e.audit,
		Registerer:        e.reg,
		Logger:            log,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.Guard(e.users.middleware(srv.Handler())))
	mux.Handle("/sse", srv.Guard(e.users.middleware(srv.SSEHandler())))
	ts := httptest.NewServer(mux)
	e.url = ts.URL
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := h.Close(ctx); err != nil {
			t.Errorf("host Close: %v", err)
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return e
}

// bearer adds a user's token to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func httpClient(token string) *http.Client {
	return &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}}
}

// wire is one way a client connects.
type wire struct {
	name     string
	sse      bool
	version  string // ClientSessionOptions.ProtocolVersion
	sessions bool   // the server keeps a session
}

var wires = []wire{
	{name: "streamable-2026-07-28", version: "2026-07-28"},
	{name: "streamable-2025-11-25", version: "2025-11-25", sessions: true},
	{name: "streamable-2025-06-18", version: "2025-06-18", sessions: true},
	{name: "sse", sse: true, version: "2025-11-25", sessions: true},
}

// clientEvents collects what the server pushes to a client.
type clientEvents struct {
	listChanged chan struct{}
	progress    chan *mcp.ProgressNotificationParams
}

// connect opens a client session for the user token over w.
func (e *env) connect(t testing.TB, w wire, token string) (*mcp.ClientSession, *clientEvents) {
	t.Helper()
	ev := &clientEvents{listChanged: make(chan struct{}, 16), progress: make(chan *mcp.ProgressNotificationParams, 1024)}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1.0.0"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case ev.listChanged <- struct{}{}:
			default:
			}
		},
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			ev.progress <- r.Params
		},
	})
	var tr mcp.Transport
	if w.sse {
		tr = &mcp.SSEClientTransport{Endpoint: e.url + "/sse", HTTPClient: httpClient(token)}
	} else {
		tr = &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: httpClient(token), MaxRetries: -1}
	}
	// The SSE client ties its event stream to Connect's context, so it
	// must outlive the call.
	cs, err := client.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: w.version})
	if err != nil {
		t.Fatalf("connect %s as %s: %v", w.name, token, err)
	}
	if got := cs.InitializeResult().ProtocolVersion; got != w.version {
		t.Fatalf("connect %s: negotiated %s", w.name, got)
	}
	if hasID := cs.ID() != ""; !w.sse && hasID != w.sessions {
		t.Fatalf("connect %s: session ID %q, want a session: %v", w.name, cs.ID(), w.sessions)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, ev
}

// rawRequest sends one HTTP request and returns the status and body.
func rawRequest(t *testing.T, method, url, token string, header http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue returns a counter's value, or a histogram's sample count,
// for the series with the given tool and outcome labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name, tool, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["tool"] != tool || labels["outcome"] != outcome {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var storeQueryAll = store.AuditQuery{}

// nopHost serves no tools.
type nopHost struct{}

func (nopHost) Tools() plugin.Snapshot                      { return plugin.Snapshot{} }
func (nopHost) Subscribe(func(plugin.Event)) (unsub func()) { return func() {} }
func (nopHost) Call(context.Context, string, json.RawMessage, abi.Caller, plugin.CallOptions) (abi.CallResult, error) {
	return abi.CallResult{}, errors.New("no tools")
}

// nopAudit stores nothing.
type nopAudit struct{}

func (nopAudit) AppendAudit(_ context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	return r, nil
}

func (nopAudit) ListAudit(context.Context, store.AuditQuery) ([]store.AuditRecord, error) {
	return nil, nil
}
