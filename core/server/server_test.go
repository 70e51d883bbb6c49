package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store"
)

// fakeStore is a store whose readiness the test controls. Only Ping,
// Close and (behind the bearer check) GetToken are used by these tests.
type fakeStore struct {
	store.Store // nil: any other method panics, which the server must not call
	pingErr     atomic.Pointer[error]
	closed      atomic.Bool
}

func (f *fakeStore) Ping(context.Context) error {
	if p := f.pingErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fakeStore) Close() error {
	f.closed.Store(true)
	return nil
}

// GetToken knows no token: the bearer check of /mcp and /sse asks it.
func (f *fakeStore) GetToken(context.Context, string) (store.Token, error) {
	return store.Token{}, store.ErrNotFound
}

func (f *fakeStore) setPingErr(err error) { f.pingErr.Store(&err) }

func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Store.Dir = t.TempDir()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = ""
	cfg.Plugins.Dir = filepath.Join(t.TempDir(), "dist")
	cfg.Plugins.Config = filepath.Join(t.TempDir(), "plugins.toml") // absent: no grants
	return cfg
}

// productionConfig is testConfig in production mode with made-up WorkOS
// credentials (nothing here calls WorkOS).
func productionConfig(t *testing.T) config.Config {
	t.Helper()
	return productionConfigFrom(testConfig(t))
}

// productionConfigFrom switches cfg to production mode.
func productionConfigFrom(cfg config.Config) config.Config {
	cfg.Server.PublicURL = "https://mcp.example.com"
	cfg.Auth.WorkOSClientID = "client_test"
	cfg.Auth.WorkOSAPIKey = config.Secret("sk_test_not_a_real_key")
	cfg.Auth.CookieEncryptionKey = config.Secret("0123456789abcdef0123456789abcdef")
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// started is a server serving on a loopback port.
type started struct {
	s    *Server
	st   *fakeStore
	base string
	stop context.CancelFunc
	done chan error // Serve's result
}

func startServer(t *testing.T, cfg config.Config, setup func(*Server)) *started {
	t.Helper()
	st := &fakeStore{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(t.Context(), ForListener(cfg, ln.Addr()), testLogger(t), func(context.Context, config.StoreConfig, *slog.Logger) (store.Store, error) {
		return st, nil
	}, testAuthOptions(t))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &started{s: s, st: st, base: "http://" + ln.Addr().String(), stop: cancel, done: done}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHealthz(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	code, body := get(t, ts.base+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	// Health does not depend on readiness.
	ts.st.setPingErr(errors.New("disk gone"))
	if code, _ := get(t, ts.base+"/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz with a failing store = %d, want 200", code)
	}
}

func TestReadyz(t *testing.T) {
	var extraReady atomic.Bool
	ts := startServer(t, testConfig(t), func(s *Server) {
		s.AddReadinessCheck("extra", func(context.Context) error {
			if !extraReady.Load() {
				return errors.New("extra component not ready yet")
			}
			return nil
		})
	})
	tests := []struct {
		name        string
		storeErr    error
		extra       bool
		wantCode    int
		wantFailing []string
	}{
		{name: "extra not ready", extra: false, wantCode: 503, wantFailing: []string{"extra"}},
		{name: "all pass", extra: true, wantCode: 200},
		{name: "store down", storeErr: errors.New("store: closed"), extra: true, wantCode: 503, wantFailing: []string{"store"}},
		{name: "both down", storeErr: errors.New("store: closed"), extra: false, wantCode: 503, wantFailing: []string{"store", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.st.setPingErr(tt.storeErr)
			extraReady.Store(tt.extra)
			code, body := get(t, ts.base+"/readyz")
			if code != tt.wantCode {
				t.Errorf("GET /readyz = %d, want %d (body %s)", code, tt.wantCode, body)
			}
			var rb readyBody
			if err := json.Unmarshal([]byte(body), &rb); err != nil {
				t.Fatalf("body %q is not JSON: %v", body, err)
			}
			if strings.Join(rb.Failing, ",") != strings.Join(tt.wantFailing, ",") {
				t.Errorf("failing = %v, want %v", rb.Failing, tt.wantFailing)
			}
			if len(rb.Checks) != 3 {
				t.Errorf("checks = %+v, want store, plugins and extra", rb.Checks)
			}
			for _, c := range rb.Checks {
				if c.Name == "store" && tt.storeErr != nil && c.Error != tt.storeErr.Error() {
					t.Errorf("store check error = %q, want %q", c.Error, tt.storeErr)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, testConfig(t), func(s *Server) {
		c := newTestCounter()
		s.Registerer().MustRegister(c)
		c.Inc()
	})
	get(t, ts.base+"/healthz")
	get(t, ts.base+"/healthz")
	get(t, ts.base+"/no-such-route?code=SECRET")
	code, body := get(t, ts.base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`toolgate_http_requests_total{code="200",method="GET",route="/healthz"} 2`,
		`toolgate_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`toolgate_http_request_duration_seconds_count{method="GET",route="/healthz"} 2`,
		"toolgate_http_requests_in_flight 1", // the /metrics request itself
		"go_goroutines ",
		"process_start_time_seconds ",
		"toolgate_test_registered_total 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "SECRET") {
		t.Error("/metrics leaks a query string")
	}
}

func TestRequestLogHasNoQuery(t *testing.T) {
	var logs strings.Builder // ServeHTTP below is synchronous
	cfg := testConfig(t)
	st := &fakeStore{}
	s, err := newServer(t.Context(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)), func(context.Context, config.StoreConfig, *slog.Logger) (store.Store, error) {
		return st, nil
	}, testAuthOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://localhost:8788/healthz?code=SECRETCODE&token=SECRETTOKEN", nil)
	req.Host = "localhost:8788"
	s.Handler().ServeHTTP(discard{}, req)
	req, _ = http.NewRequest("GET", "http://localhost:8788/nothing?code=SECRETCODE", nil)
	s.Handler().ServeHTTP(discard{}, req)
	out := logs.String()
	if strings.Contains(out, "SECRETCODE") || strings.Contains(out, "SECRETTOKEN") {
		t.Errorf("request log contains the query string:\n%s", out)
	}
	if !strings.Contains(out, `"path":"/nothing"`) || !strings.Contains(out, `"status":404`) || !strings.Contains(out, `"route":"unmatched"`) {
		t.Errorf("request log lacks method, path, status or route:\n%s", out)
	}
}

func TestHostAllowlist(t *testing.T) {
	// Production mode, so that public_url can name a host other than the
	// listener's.
	cfg := productionConfig(t)
	ts := startServer(t, cfg, nil)
	port := strings.TrimPrefix(ts.base, "http://127.0.0.1:")
	tests := []struct {
		host string
		path string
		want int
	}{
		{"127.0.0.1:" + port, "/nothing", 404},
		{"localhost:" + port, "/nothing", 404},
		{"LOCALHOST:" + port, "/nothing", 404},
		{"mcp.example.com", "/nothing", 404}, // public_url's host
		{"localhost:8788", "/nothing", 421},
		{"evil.example:" + port, "/nothing", 421},
		{"evil.example", "/healthz", 200}, // probes skip the check
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", ts.base+tt.path, nil)
		req.Host = tt.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s with Host %q = %d, want %d", tt.path, tt.host, resp.StatusCode, tt.want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.MaxBodyBytes = 4096
	ts := startServer(t, cfg, func(s *Server) {
		s.mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					http.Error(w, "too large", http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		})
	})
	for size, want := range map[int]int{4096: 200, 4097: 413} {
		resp, err := http.Post(ts.base+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", size)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %d bytes = %d, want %d", size, resp.StatusCode, want)
		}
	}
}

// TestGracefulDrain cancels the context while a request is in flight: the
// request must complete, readiness must drop, and the store must close
// only after the request finished.
func TestGracefulDrain(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	shutdownStarted := make(chan struct{})
	var storeClosedDuringRequest atomic.Bool
	var st *fakeStore
	ts := startServer(t, testConfig(t), func(s *Server) {
		s.testHookShutdown = func() { close(shutdownStarted) }
		st = s.store.(*fakeStore)
		s.mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			<-release
			storeClosedDuringRequest.Store(st.closed.Load())
			_, _ = w.Write([]byte("finished"))
		})
	})
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(ts.base + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	<-inHandler
	ts.stop()
	select {
	case <-shutdownStarted:
	case err := <-ts.done:
		ts.done <- err
		close(release)
		t.Fatalf("Serve returned %v without draining the in-flight request", err)
	}
	if !ts.s.draining.Load() {
		t.Error("server not marked draining after shutdown started")
	}
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned %v while a request was in flight", err)
	default:
	}
	close(release)
	r := <-got
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request = %d %q %v, want 200 \"finished\"", r.code, r.body, r.err)
	}
	if err := <-ts.done; err != nil {
		t.Errorf("Serve = %v, want nil after a clean drain", err)
	}
	ts.done <- nil // for the cleanup
	if storeClosedDuringRequest.Load() {
		t.Error("the store was closed while a request was still running")
	}
	if !st.closed.Load() {
		t.Error("the store was not closed after the drain")
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://")); err == nil {
		t.Error("the listener still accepts connections after Serve returned")
	}
}

// TestDrainTimeout checks that a request outliving shutdown_timeout is cut
// off and Serve reports it.
func TestDrainTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.ShutdownTimeout = 0 // expire at once; Validate is not rerun by Serve
	release := make(chan struct{})
	inHandler := make(chan struct{})
	ts := startServer(t, testConfig(t), func(s *Server) {
		s.cfg.Server.ShutdownTimeout = cfg.Server.ShutdownTimeout
		s.mux.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
			close(inHandler)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
	})
	defer close(release)
	go func() {
		if resp, err := http.Get(ts.base + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-inHandler
	ts.stop()
	err := <-ts.done
	ts.done <- err
	if err == nil || !strings.Contains(err.Error(), "requests still running") {
		t.Errorf("Serve = %v, want an error about requests still running", err)
	}
	if !ts.st.closed.Load() {
		t.Error("the store was not closed after a forced shutdown")
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Log.Level = "loud"
	_, err := New(t.Context(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("New with a bad config = %v, want a log.level error", err)
	}
}

// TestBusyDataDir runs two servers on one data directory with the real
// Badger store: the second must fail with ErrDataDirLocked and one line.
func TestBusyDataDir(t *testing.T) {
	cfg := testConfig(t)
	first, err := New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := New(t.Context(), cfg, testLogger(t))
	if err == nil {
		second.Close()
		t.Fatal("a second server opened a data directory that is in use")
	}
	if !errors.Is(err, ErrDataDirLocked) {
		t.Errorf("error %v does not wrap ErrDataDirLocked", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, cfg.Store.Dir) {
		t.Errorf("error %q should be one line naming %s", msg, cfg.Store.Dir)
	}
	// After the first closes, the directory is free again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("reopening a released directory: %v", err)
	}
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRun runs the real thing on a free port with the Badger store and
// stops it by cancelling the context.
func TestRun(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- Run(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, nil))) }()
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + cfg.Server.Listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), `"msg":"toolgate listening","addr":"`+cfg.Server.Listen+`"`) {
		t.Errorf("no start line with the listen address in:\n%s", logs.String())
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	NewLogger(&b, config.LogConfig{Level: "warn", Format: "auto"}).Info("hidden")
	NewLogger(&b, config.LogConfig{Level: "warn", Format: "auto"}).Warn("shown", "k", "v")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.HasPrefix(got, `{"time":`) {
		t.Errorf("auto format to a non-terminal should be JSON at warn level, got %q", got)
	}
	b.Reset()
	NewLogger(&b, config.LogConfig{Level: "debug", Format: "text"}).Debug("shown", "k", "v")
	if got := b.String(); !strings.Contains(got, "level=DEBUG msg=shown k=v") {
		t.Errorf("text format at debug level, got %q", got)
	}
}

func TestRouteLabel(t *testing.T) {
	for in, want := range map[string]string{"": "unmatched", "GET /healthz": "/healthz", "/mcp": "/mcp", "POST /token": "/token"} {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
