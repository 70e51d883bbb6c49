package admin

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/badgerstore"
)

// TestAdminInvalidates: every grant the handler revokes and every client
// it deletes is passed to Config.Invalidate before the handler answers,
// so the caller's next request already finds the bearer cache cleaned.
func TestAdminInvalidates(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, badgerstore.Options{Dir: t.TempDir(), GCInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	for _, id := range []string{"client-a", "client-b"} {
		if err := st.CreateClient(ctx, store.Client{ID: id, Name: id, RedirectURIs: []string{"https://a.example/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct{ id, client, email string }{{"g1", "client-a", "alice@example.com"}, {"g2", "client-a", "bob@example.com"}, {"g3", "client-b", "bob@example.com"}} {
		if err := st.CreateGrant(ctx, store.Grant{ID: g.id, ClientID: g.client, UserID: "user_" + g.email, Email: g.email, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu  sync.Mutex
		got []store.Change
	)
	token := store.NewSecret()
	h, err := NewHandler(Config{Token: token, Logger: slog.New(slog.DiscardHandler), Invalidate: func(ch store.Change) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ch)
	}}, st)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c := &Client{BaseURL: ts.URL, Token: token}
	seen := func() []store.Change {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(got)
		got = nil
		return out
	}

	if err := c.RevokeGrant(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if s, want := seen(), []store.Change{{Kind: store.ChangeGrantRevoked, ID: "g1"}}; !slices.Equal(s, want) {
		t.Errorf("after revoking g1: Invalidate saw %v, want %v", s, want)
	}
	if n, err := c.RevokeUserGrants(ctx, "bob@example.com"); err != nil || n != 2 {
		t.Fatalf("revoke bob: %d %v", n, err)
	}
	s := seen()
	slices.SortFunc(s, func(a, b store.Change) int { return strings.Compare(a.ID, b.ID) })
	if want := []store.Change{{Kind: store.ChangeGrantRevoked, ID: "g2"}, {Kind: store.ChangeGrantRevoked, ID: "g3"}}; !slices.Equal(s, want) {
		t.Errorf("after revoking bob's grants: Invalidate saw %v, want %v", s, want)
	}
	if err := c.DeleteClient(ctx, "client-b"); err != nil {
		t.Fatal(err)
	}
	if s, want := seen(), []store.Change{{Kind: store.ChangeClientDeleted, ID: "client-b"}}; !slices.Equal(s, want) {
		t.Errorf("after deleting client-b: Invalidate saw %v, want %v", s, want)
	}
	// A failed change (nothing to delete) invalidates nothing.
	if err := c.DeleteClient(ctx, "client-b"); err == nil {
		t.Error("deleting a deleted client succeeded")
	}
	if s := seen(); len(s) != 0 {
		t.Errorf("a failed delete invalidated %v", s)
	}
}
