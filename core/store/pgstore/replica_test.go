package pgstore

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// openN opens n stores on one database, as n replicas would.
func openN(t *testing.T, url string, n int, opts Options) []*Store {
	t.Helper()
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(t.Context(), url, opts)
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores
}

// seed creates client c and grant g through s.
func seed(t *testing.T, s store.Store) store.Grant {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateClient(ctx, store.Client{ID: "c", CreatedAt: now()}); err != nil {
		t.Fatal(err)
	}
	g := store.Grant{ID: "g", ClientID: "c", UserID: "u", CreatedAt: now()}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	return g
}

func tok(hash string, kind store.TokenKind, g store.Grant) store.Token {
	return store.Token{Hash: hash, Kind: kind, GrantID: g.ID, ClientID: g.ClientID, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
}

// raceReplicas runs fn takers times, alternating between the stores, all
// released at once, and checks that exactly one call succeeded and every
// other one got ErrAlreadyUsed. It returns the winner's index.
func raceReplicas(t *testing.T, stores []*Store, what string, fn func(s *Store, i int) error) int {
	t.Helper()
	const takers = 16
	errs := make([]error, takers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range takers {
		done.Go(func() {
			start.Wait()
			errs[i] = fn(stores[i%len(stores)], i)
		})
	}
	start.Done()
	done.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: takers %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrAlreadyUsed):
			t.Fatalf("%s: taker %d: got %v, want ErrAlreadyUsed", what, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: nobody succeeded", what)
	}
	return winner
}

// Single-use operations have exactly one winner when two replicas (two
// stores with their own pools) are presented the same code, state or
// refresh token at once.
func TestSingleUseAcrossReplicas(t *testing.T) {
	stores := openN(t, pgtest.URL(t), 2, testOptions(t))
	a := stores[0]
	ctx := t.Context()
	g := seed(t, a)

	code := store.AuthCode{CodeHash: store.HashSecret("code"), GrantID: g.ID, ClientID: g.ClientID, CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
	if err := a.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	issued := func(i int) store.Token { return tok(store.HashSecret("x"+strconv.Itoa(i)), store.RefreshToken, g) }
	w := raceReplicas(t, stores, "ExchangeAuthCode", func(s *Store, i int) error {
		_, err := s.ExchangeAuthCode(ctx, code.CodeHash, []store.Token{issued(i)}, time.Time{})
		return err
	})

	p := store.PendingAuthorization{StateHash: store.HashSecret("state"), ClientID: "c", CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
	if err := a.CreatePendingAuthorization(ctx, p); err != nil {
		t.Fatal(err)
	}
	raceReplicas(t, stores, "ConsumePendingAuthorization", func(s *Store, _ int) error {
		_, err := s.ConsumePendingAuthorization(ctx, p.StateHash)
		return err
	})

	old := issued(w)
	rotated := func(i int) store.Token { return tok(store.HashSecret("r"+strconv.Itoa(i)), store.RefreshToken, g) }
	w = raceReplicas(t, stores, "RotateRefreshToken", func(s *Store, i int) error {
		_, err := s.RotateRefreshToken(ctx, old.Hash, []store.Token{rotated(i)}, func(gr *store.Grant) error {
			gr.Role = "by-" + strconv.Itoa(i)
			return nil
		})
		return err
	})
	for i := range 16 {
		_, err := stores[1].GetToken(ctx, rotated(i).Hash)
		if i == w && err != nil {
			t.Errorf("the winner's token: %v", err)
		}
		if i != w && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("loser %d's token: got %v, want ErrNotFound", i, err)
		}
	}
	gr, err := stores[1].GetGrant(ctx, g.ID)
	if err != nil || gr.Role != "by-"+strconv.Itoa(w) {
		t.Errorf("grant after the race: role %q, %v; want by-%d", gr.Role, err, w)
	}
}

// collect gathers the changes a Watch delivers.
type collect chan store.Change

// next returns the next change, failing the test after 10s.
func (c collect) next(t *testing.T, what string) store.Change {
	t.Helper()
	select {
	case ch := <-c:
		return ch
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing announced within 10s", what)
		return store.Change{}
	}
}

// want takes changes until want arrives, failing on anything else but
// grant updates (which the setup itself may cause).
func (c collect) want(t *testing.T, what string, want store.Change) {
	t.Helper()
	for {
		got := c.next(t, what)
		if got == want {
			return
		}
		if got.Kind != store.ChangeGrantUpdated {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func watch(t *testing.T, s *Store) collect {
	c := make(collect, 1024)
	s.Watch(t.Context(), func(ch store.Change) { c <- ch })
	return c
}

// A change made through one replica reaches the watchers of every replica,
// its own included, exactly once each.
func TestWatchAcrossReplicas(t *testing.T) {
	stores := openN(t, pgtest.URL(t), 2, testOptions(t))
	a, b := stores[0], stores[1]
	ctx := t.Context()
	g := seed(t, a)
	atA, atB := watch(t, a), watch(t, b)

	if _, err := a.UpdateGrant(ctx, g.ID, func(x *store.Grant) error { x.Role = "admin"; return nil }); err != nil {
		t.Fatal(err)
	}
	want := store.Change{Kind: store.ChangeGrantUpdated, ID: g.ID}
	if got := atA.next(t, "replica A"); got != want {
		t.Fatalf("replica A got %v, want %v", got, want)
	}
	if got := atB.next(t, "replica B"); got != want {
		t.Fatalf("replica B got %v, want %v", got, want)
	}
	// Changes made on B reach A too, in order.
	access := tok(store.HashSecret("t"), store.AccessToken, g)
	code := store.AuthCode{CodeHash: store.HashSecret("c"), GrantID: g.ID, CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
	if err := b.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ExchangeAuthCode(ctx, code.CodeHash, []store.Token{access}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteToken(ctx, access.Hash); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []store.Change{
		{Kind: store.ChangeTokenDeleted, ID: access.Hash},
		{Kind: store.ChangeClientDeleted, ID: "c"},
		{Kind: store.ChangeGrantRevoked, ID: g.ID},
	} {
		atA.want(t, "replica A", w)
		atB.want(t, "replica B", w)
	}
	// Nothing arrives twice: a marker change is the next thing each sees.
	seed(t, a)
	if err := a.RevokeGrant(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	marker := store.Change{Kind: store.ChangeGrantRevoked, ID: g.ID}
	for name, c := range map[string]collect{"A": atA, "B": atB} {
		if got := c.next(t, "replica "+name); got != marker {
			t.Fatalf("replica %s: got %v before the marker, want the marker", name, got)
		}
	}
}

// terminateListener ends the listening session of the database at url
// from outside, as a network failure or a server restart would.
func terminateListener(t *testing.T, admin, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = $1 AND application_name LIKE '`+listenerAppPrefix+`%'`, strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no listening session to terminate")
	}
}

// When the listening connection is lost the watchers are suspended at
// once, and resumed (ChangeUnknown) once the store listens again; changes
// from other replicas flow again after that.
func TestWatchSuspendedWhileListenerDown(t *testing.T) {
	dbURL := pgtest.URL(t)
	stores := openN(t, dbURL, 2, testOptions(t))
	a, b := stores[0], stores[1]
	g := seed(t, a)
	atB := watch(t, b)

	terminateListener(t, pgtest.AdminURL(t), dbURL)
	// Each store's listener was ended; B's watcher sees its own.
	if got := atB.next(t, "after the listener was terminated"); got.Kind != store.ChangeSuspended {
		t.Fatalf("got %v, want ChangeSuspended", got)
	}
	if got := atB.next(t, "after reconnecting"); got.Kind != store.ChangeUnknown {
		t.Fatalf("got %v, want ChangeUnknown", got)
	}
	if _, err := a.UpdateGrant(t.Context(), g.ID, func(x *store.Grant) error { x.Role = "r"; return nil }); err != nil {
		t.Fatal(err)
	}
	// A's listener reconnects on its own schedule, which does not matter
	// to B: the change travels from A's transaction to B's listener.
	if got, want := atB.next(t, "a change after reconnecting"), (store.Change{Kind: store.ChangeGrantUpdated, ID: g.ID}); got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A quiet listening connection is pinged, not dropped: after several
// heartbeats nothing was suspended and changes still arrive.
func TestWatchSurvivesHeartbeats(t *testing.T) {
	dbURL := pgtest.URL(t)
	beats := make(chan struct{}, 100)
	opts := testOptions(t)
	opts.HeartbeatInterval = 20 * time.Millisecond
	opts.afterHeartbeat = func() {
		select {
		case beats <- struct{}{}:
		default:
		}
	}
	b, err := Open(t.Context(), dbURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := openN(t, dbURL, 1, testOptions(t))[0]
	g := seed(t, a)
	atB := watch(t, b)
	for range 3 {
		select {
		case <-beats:
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat within 10s")
		}
	}
	if _, err := a.UpdateGrant(t.Context(), g.ID, func(x *store.Grant) error { x.Role = "r"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := atB.next(t, "a change after heartbeats"), (store.Change{Kind: store.ChangeGrantUpdated, ID: g.ID}); got != want {
		t.Fatalf("got %v, want %v (a suspension means a heartbeat broke the connection)", got, want)
	}
}

// GarbageCollect announces the grants and clients it removes to every
// replica, like revocations; expired tokens need no announcement.
func TestGarbageCollectAnnounces(t *testing.T) {
	stores := openN(t, pgtest.URL(t), 2, testOptions(t))
	a, b := stores[0], stores[1]
	ctx := t.Context()
	soon := now().Add(time.Hour)
	if err := a.CreateClient(ctx, store.Client{ID: "old", CreatedAt: now(), ExpiresAt: soon}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateClient(ctx, store.Client{ID: "kept", CreatedAt: now()}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Grant{
		{ID: "of-old-client", ClientID: "old", UserID: "u", CreatedAt: now()},
		{ID: "expiring", ClientID: "kept", UserID: "u", CreatedAt: now(), ExpiresAt: soon},
		{ID: "lasting", ClientID: "kept", UserID: "u", CreatedAt: now()},
	} {
		if err := a.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	atB := watch(t, b)
	if err := a.GarbageCollect(ctx, soon.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := map[store.Change]bool{}
	for range 3 {
		got[atB.next(t, "changes of the collection")] = true
	}
	for _, w := range []store.Change{
		{Kind: store.ChangeGrantRevoked, ID: "of-old-client"},
		{Kind: store.ChangeGrantRevoked, ID: "expiring"},
		{Kind: store.ChangeClientDeleted, ID: "old"},
	} {
		if !got[w] {
			t.Errorf("replica B was not told %v; got %v", w, got)
		}
	}
	if _, err := b.GetGrant(ctx, "lasting"); err != nil {
		t.Errorf("a grant that does not expire: %v", err)
	}
}
