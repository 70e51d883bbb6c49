package main

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/server"
)

// TestDrainWithOpenStreams: a replica shutting down while clients hold
// open MCP streams (an /sse stream, a stateful session's GET stream) ends
// them and finishes its drain cleanly instead of waiting out
// server.shutdown_timeout and cutting connections (a rolling restart of
// replicas behind a load balancer depends on it).
func TestDrainWithOpenStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	t.Chdir(t.TempDir())
	cfg := config.Default()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = ""
	cfg.Store.Dir = filepath.Join(t.TempDir(), "data")
	cfg.Store.SyncWrites = false
	cfg.Plugins.Watch = false
	cfg.Server.ShutdownTimeout = 10 * time.Minute // a drain that waited for the streams would hang the test
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		t.Fatal(err)
	}
	cfg = server.ForListener(cfg, ln.Addr())
	s, err := server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	public := cfg.Server.PublicURL

	// An /sse stream.
	sseToken, _ := signInAt(t, public, "/sse", "alice@example.com")
	req, _ := http.NewRequest(http.MethodGet, public+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+sseToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
	}
	sseEnded := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(sseEnded)
	}()

	// A stateful session with its standalone GET stream.
	mcpToken, _ := signIn(t, public, "bob@example.com")
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1.0.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: public + "/mcp", HTTPClient: bearerClient(mcpToken), MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("Serve = %v, want a clean drain", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the drain is still waiting for the open streams after 2 minutes")
	}
	for name, ch := range map[string]<-chan struct{}{"/sse stream": sseEnded} {
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Errorf("the %s did not end", name)
		}
	}
	ended := make(chan error, 1)
	go func() { ended <- cs.Wait() }()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Error("the stateful session did not end")
	}
}
