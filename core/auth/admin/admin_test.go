package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/replica"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

type revoker struct {
	mu  sync.Mutex
	got []string
}

func (r *revoker) RevokeSession(_ context.Context, sid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, sid)
	return nil
}

func setup(t *testing.T) (store.Store, *Client, *revoker, http.Handler) {
	t.Helper()
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, badgerstore.Options{Dir: t.TempDir(), GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	for _, id := range []string{"client-a", "client-b"} {
		if err := st.CreateClient(ctx, store.Client{ID: id, Name: id, SecretHash: "secret-hash", RedirectURIs: []string{"https://a.example/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range []struct{ id, client, email string }{{"g1", "client-a", "alice@example.com"}, {"g2", "client-b", "alice@example.com"}, {"g3", "client-a", "bob@example.com"}} {
		err := st.CreateGrant(ctx, store.Grant{ID: g.id, ClientID: g.client, UserID: "user_" + g.email, Email: g.email, UpstreamSessionID: "session_" + g.id,
			UpstreamRefreshToken: []byte("sealed-upstream-token"), CreatedAt: now.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	rv := &revoker{}
	token := store.NewSecret()
	h, err := NewHandler(Config{Token: token, Sessions: rv, Logger: slog.New(slog.DiscardHandler)}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return st, &Client{BaseURL: ts.URL, Token: token}, rv, h
}

func TestAdminGrants(t *testing.T) {
	st, c, rv, _ := setup(t)
	ctx := context.Background()
	all, err := c.ListGrants(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %v %v", all, err)
	}
	alice, err := c.ListGrants(ctx, "ALICE@example.com")
	if err != nil || len(alice) != 2 {
		t.Fatalf("list alice: %v %v", alice, err)
	}
	if err := c.RevokeGrant(ctx, "g3"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetGrant(ctx, "g3"); err == nil {
		t.Error("g3 still there after revoke")
	}
	if err := c.RevokeGrant(ctx, "g3"); err == nil || !strings.Contains(err.Error(), "no such grant") {
		t.Errorf("second revoke: %v", err)
	}
	n, err := c.RevokeUserGrants(ctx, "alice@example.com")
	if err != nil || n != 2 {
		t.Fatalf("revoke alice: %d %v", n, err)
	}
	if left, _ := c.ListGrants(ctx, ""); len(left) != 0 {
		t.Errorf("grants left: %v", left)
	}
	if len(rv.got) != 3 {
		t.Errorf("upstream sessions ended: %v, want 3", rv.got)
	}
}

func TestAdminClients(t *testing.T) {
	st, c, _, _ := setup(t)
	ctx := context.Background()
	cs, err := c.ListClients(ctx)
	if err != nil || len(cs) != 2 || cs[0].ID != "client-a" {
		t.Fatalf("list: %v %v", cs, err)
	}
	if err := c.DeleteClient(ctx, "client-a"); err != nil {
		t.Fatal(err)
	}
	if gs, _ := st.ListGrants(ctx, store.GrantFilter{ClientID: "client-a"}); len(gs) != 0 {
		t.Errorf("grants of a deleted client: %v", gs)
	}
	if err := c.DeleteClient(ctx, "client-a"); err == nil {
		t.Error("deleting a missing client succeeded")
	}
}

// The API never shows secrets, refuses a wrong token and non-loopback
// callers.
func TestAdminAccess(t *testing.T) {
	_, c, _, h := setup(t)
	for _, path := range []string{"/v1/grants", "/v1/clients"} {
		req, _ := http.NewRequest("GET", c.BaseURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "secret-hash") || strings.Contains(string(body), "sealed") || strings.Contains(string(body), "session_") {
			t.Errorf("%s shows secrets: %s", path, body)
		}
	}
	bad := &Client{BaseURL: c.BaseURL, Token: strings.Repeat("x", 43)}
	if _, err := bad.ListGrants(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/grants", nil)
	req.RemoteAddr = "192.0.2.1:4444"
	req.Header.Set("Authorization", "Bearer "+c.Token)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("non-loopback caller: %d, want 403", rec.Code)
	}
	if _, err := NewHandler(Config{Token: "short"}, nil); err == nil {
		t.Error("NewHandler accepted a short token")
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := LoadOrCreateToken(dir)
	if err != nil || len(a) != 43 {
		t.Fatalf("create: %q %v", a, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, %v", fi.Mode(), err)
	}
	b, err := LoadOrCreateToken(dir)
	if err != nil || a != b {
		t.Errorf("reload: %q %v, want the same token", b, err)
	}
	if err := os.WriteFile(filepath.Join(dir, TokenFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(dir); err == nil {
		t.Error("a short token was accepted")
	}
}

func TestAdminReplicas(t *testing.T) {
	st, c, _, _ := setup(t)
	ctx := context.Background()
	rs, err := c.ListReplicas(ctx)
	if err != nil || rs == nil || len(rs) != 0 {
		t.Fatalf("no replicas: %v %v, want an empty list", rs, err)
	}
	for _, id := range []string{"b:8788", "a:8788"} {
		r, err := replica.New(replica.Config{Store: st, Self: replica.Info{ID: id, URL: "https://mcp.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		r.SetPlugins("sha256:"+id, []replica.Plugin{{Name: "add", SHA256: "aa", Tools: []string{"add"}}})
		if err := r.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A record that cannot be decoded does not hide the others.
	if err := st.KVPut(ctx, store.SystemNamespace, "replica/broken", []byte("{"), 0); err != nil {
		t.Fatal(err)
	}
	rs, err = c.ListReplicas(ctx)
	if err != nil || len(rs) != 2 || rs[0].ID != "a:8788" || rs[1].ID != "b:8788" || rs[0].PluginDigest != "sha256:a:8788" ||
		len(rs[1].Plugins) != 1 || rs[1].Plugins[0].Tools[0] != "add" {
		t.Fatalf("replicas = %+v, %v", rs, err)
	}
}
