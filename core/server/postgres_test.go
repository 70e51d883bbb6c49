package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// TestRunPostgres serves with store.backend = "postgres": /readyz reports
// the store ready, and the database URL's password appears in no log line.
func TestRunPostgres(t *testing.T) {
	const password = "pg-pa55word-never-logged"
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	// The test server trusts local connections, so the password is only
	// carried along, as a real one would be.
	u.User = url.UserPassword(u.User.Username(), password)
	cfg := testConfig(t)
	cfg.Store.Backend = "postgres"
	cfg.Store.Postgres.URL = config.Secret(u.String())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- Run(ctx, cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	var body readyBody
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + cfg.Server.Listen + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body = readyBody{}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&body) == nil
	})
	found := false
	for _, c := range body.Checks {
		if c.Name == "store" {
			found = c.Error == ""
		}
	}
	if !found {
		t.Errorf("/readyz checks %+v, want a passing store check", body.Checks)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), `"backend":"postgres"`) {
		t.Errorf("no log line says the postgres store opened:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the logs show the database password:\n%s", logs.String())
	}
}

// An unreachable database stops start-up with one line that does not
// quote the URL.
func TestNewPostgresUnreachable(t *testing.T) {
	const password = "pg-pa55word-never-shown"
	cfg := testConfig(t)
	cfg.Store.Backend = "postgres"
	cfg.Store.Postgres.URL = config.Secret("postgres://toolgate:" + password + "@127.0.0.1:1/toolgate?connect_timeout=5")
	s, err := New(t.Context(), cfg, testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("New succeeded with an unreachable database")
	}
	if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, "\n") || !strings.Contains(msg, "postgres store") {
		t.Errorf("error %q: want one line naming the postgres store, without the password", msg)
	}
}
