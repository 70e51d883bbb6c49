package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/config"

	"github.com/toolgate/toolgate/core/internal/testutil"
)

func newTestCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "toolgate_test_registered_total", Help: "A collector registered by another component."})
}

// syncBuffer collects log output the test reads while the server runs.
type syncBuffer = testutil.SyncBuffer

// discard is a ResponseWriter that drops everything.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// waitFor polls cond until it holds or 10 seconds pass. It is only for
// conditions outside the test's control, such as a listener coming up in
// another goroutine of the server under test.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	devKeyOnce sync.Once
	devKey     *rsa.PrivateKey
	devKeyErr  error
)

// testAuthOptions shares one development AuthKit signing key across the
// package's tests: generating a 2048-bit key per server would dominate
// their run time.
func testAuthOptions(t testing.TB) authOptions {
	t.Helper()
	devKeyOnce.Do(func() { devKey, devKeyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if devKeyErr != nil {
		t.Fatal(devKeyErr)
	}
	return authOptions{devKey: devKey}
}

// startBadgerServer serves cfg with a real Badger store on a loopback
// port until the test ends; wrap, when not nil, wraps the server's whole
// handler (the development AuthKit's traffic included).
func startBadgerServer(t *testing.T, cfg config.Config, logger *slog.Logger, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(t.Context(), ForListener(cfg, ln.Addr()), logger, openBadger, testAuthOptions(t))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if wrap != nil {
		s.handler = wrap(s.handler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}
