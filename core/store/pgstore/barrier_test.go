package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
)

// seen records the changes a Watch callback has returned from.
type seen struct {
	mu  sync.Mutex
	got []store.Change
}

func record(t *testing.T, s *Store) *seen {
	r := &seen{}
	s.Watch(t.Context(), func(ch store.Change) {
		r.mu.Lock()
		r.got = append(r.got, ch)
		r.mu.Unlock()
	})
	return r
}

func (r *seen) has(ch store.Change) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.got, ch)
}

// logs records the store's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// matching returns the lines containing every one of parts.
func (l *logs) matching(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// within runs fn and fails the test if it has not returned after d: for
// operations that must not wait for a replica that is gone.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %s", what, d)
	}
}

// When an operation that revokes or changes what a token stands for
// returns, every replica's watchers have already run for it: no polling.
func TestSettleAcrossReplicas(t *testing.T) {
	opts := testOptions(t)
	opts.AckTimeout = 30 * time.Second // only a broken wait takes that long, even on a loaded machine
	stores := openN(t, pgtest.URL(t), 3, opts)
	a := stores[0]
	ctx := t.Context()
	seens := []*seen{record(t, stores[0]), record(t, stores[1]), record(t, stores[2])}
	check := func(what string, want store.Change) {
		t.Helper()
		for i, r := range seens {
			if !r.has(want) {
				t.Fatalf("%s: replica %d's watcher has not seen %v when the operation returned", what, i, want)
			}
		}
	}
	for i := range 10 {
		client := fmt.Sprintf("c%d", i)
		g := store.Grant{ID: fmt.Sprintf("g%d", i), ClientID: client, UserID: "u", CreatedAt: now()}
		if err := a.CreateClient(ctx, store.Client{ID: client, CreatedAt: now()}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		// Alternate the replica making the change.
		s := stores[i%3]
		if _, err := s.UpdateGrant(ctx, g.ID, func(x *store.Grant) error { x.Permissions = []string{"p"}; return nil }); err != nil {
			t.Fatal(err)
		}
		check("UpdateGrant", store.Change{Kind: store.ChangeGrantUpdated, ID: g.ID})

		code := store.AuthCode{CodeHash: store.HashSecret("code" + g.ID), GrantID: g.ID, CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
		if err := a.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		access, refresh := tok(store.HashSecret("a"+g.ID), store.AccessToken, g), tok(store.HashSecret("r"+g.ID), store.RefreshToken, g)
		if _, err := a.ExchangeAuthCode(ctx, code.CodeHash, []store.Token{access, refresh}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteToken(ctx, access.Hash); err != nil {
			t.Fatal(err)
		}
		check("DeleteToken", store.Change{Kind: store.ChangeTokenDeleted, ID: access.Hash})

		seens[1].mu.Lock()
		seens[1].got = nil // the rotation's update is the same change as UpdateGrant's
		seens[1].mu.Unlock()
		rotated := tok(store.HashSecret("r2"+g.ID), store.RefreshToken, g)
		if _, err := s.RotateRefreshToken(ctx, refresh.Hash, []store.Token{rotated}, func(x *store.Grant) error { x.Role = "admin"; return nil }); err != nil {
			t.Fatal(err)
		}
		if !seens[1].has(store.Change{Kind: store.ChangeGrantUpdated, ID: g.ID}) {
			t.Fatal("RotateRefreshToken: replica 1's watcher has not seen the grant update when it returned")
		}

		if i%2 == 0 {
			if err := s.RevokeGrant(ctx, g.ID); err != nil {
				t.Fatal(err)
			}
			check("RevokeGrant", store.Change{Kind: store.ChangeGrantRevoked, ID: g.ID})
		} else {
			if err := s.DeleteClient(ctx, client); err != nil {
				t.Fatal(err)
			}
			check("DeleteClient", store.Change{Kind: store.ChangeClientDeleted, ID: client})
			check("DeleteClient", store.Change{Kind: store.ChangeGrantRevoked, ID: g.ID})
		}
	}
}

// listenerPID returns the backend pid of s's listening session.
func listenerPID(t *testing.T, conn *pgx.Conn, s *Store) int {
	t.Helper()
	var pid int
	if err := conn.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, listenerAppPrefix+s.instance).Scan(&pid); err != nil {
		t.Fatalf("listening session of %s: %v", s.instance, err)
	}
	return pid
}

// A replica whose listening session was terminated is not waited for: it
// answers once it listens again, or its cache stays suspended meanwhile.
func TestSettleListenerTerminated(t *testing.T) {
	dbURL := pgtest.URL(t)
	opts := testOptions(t)
	opts.AckTimeout = time.Minute // a wait for the dead session would show
	stores := openN(t, dbURL, 2, opts)
	a, b := stores[0], stores[1]
	g := seed(t, a)
	atB := record(t, b)
	admin, err := pgx.Connect(t.Context(), pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, listenerPID(t, admin, b)); err != nil {
		t.Fatal(err)
	}
	within(t, 20*time.Second, "RevokeGrant after B's listener was terminated", func() error { return a.RevokeGrant(t.Context(), g.ID) })
	// B learned of it, or was suspended (and bypasses its cache) then.
	if !atB.has(store.Change{Kind: store.ChangeGrantRevoked, ID: g.ID}) && !atB.has(store.Change{Kind: store.ChangeSuspended}) {
		t.Fatalf("B saw %v: neither the revocation nor a suspension", atB.got)
	}
}

// fakeListener is a session named like a store's listener that listens for
// ack requests and answers only when told to: a replica that hangs, or,
// once its socket is closed, one that was killed.
type fakeListener struct {
	id   string
	conn *pgx.Conn
}

func newFakeListener(t *testing.T, dbURL, id string) *fakeListener {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	for _, sql := range []string{"LISTEN " + ackRequestChannel, "SET application_name = '" + listenerAppPrefix + id + "'"} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeListener{id: id, conn: conn}
}

// request returns the next ack request's barrier, and the instance it
// came from.
func (f *fakeListener) request(t *testing.T) (barrier, from string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := f.conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("fake listener: no ack request: %v", err)
	}
	barrier, from, _ = strings.Cut(n.Payload, " ")
	return barrier, from
}

// A replica that never answers costs one AckTimeout and a warning naming
// it; later changes do not wait for it until it answers again.
func TestSettleTimesOut(t *testing.T) {
	dbURL := pgtest.URL(t)
	l := &logs{}
	opts := testOptions(t)
	opts.Logger = slog.New(l)
	opts.AckTimeout = 500 * time.Millisecond // also bounds the request's query
	a := openN(t, dbURL, 1, opts)[0]
	g := seed(t, a)
	hung := newFakeListener(t, dbURL, "00000000deadbeef")

	if err := a.RevokeGrant(t.Context(), g.ID); err != nil {
		t.Fatalf("RevokeGrant with a replica that does not answer: %v, want success (the change is committed)", err)
	}
	if _, from := hung.request(t); from != a.instance {
		t.Fatalf("ack request from %q, want %q", from, a.instance)
	}
	warned := l.matching("WARN", "did not confirm", "00000000deadbeef", "revoke grant")
	if len(warned) != 1 {
		t.Fatalf("warnings naming the silent replica: %q, want one", l.lines)
	}
	if got := a.barriers.laggingReplicas(); !slices.Equal(got, []string{hung.id}) {
		t.Fatalf("lagging replicas %v, want [%s]", got, hung.id)
	}
	// The next change asks again but does not wait for it: no second warning.
	seed2 := store.Grant{ID: "g2", ClientID: "c", UserID: "u", CreatedAt: now()}
	if err := a.CreateGrant(t.Context(), seed2); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeGrant(t.Context(), seed2.ID); err != nil {
		t.Fatal(err)
	}
	barrier, _ := hung.request(t)
	if n := len(l.matching("did not confirm")); n != 1 {
		t.Fatalf("%d warnings after a second change, want still 1: %q", n, l.lines)
	}
	// Once it answers (late), it is waited for again.
	if _, err := hung.conn.Exec(t.Context(), `SELECT pg_notify($1, $2)`, ackChannel(a.instance), barrier+" "+hung.id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(a.barriers.laggingReplicas()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a replica that answered is still lagging after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(l.matching("INFO", "confirms changes again", hung.id)) != 1 {
		t.Errorf("no log that the replica answers again: %q", l.lines)
	}
}

// A replica whose session is gone (its process was killed and the kernel
// closed its socket) is not waited for.
func TestSettleIgnoresGoneReplica(t *testing.T) {
	dbURL := pgtest.URL(t)
	opts := testOptions(t)
	opts.AckTimeout = time.Minute
	a := openN(t, dbURL, 1, opts)[0]
	g := seed(t, a)
	killed := newFakeListener(t, dbURL, "00000000000dead1")
	pid := int(killed.conn.PgConn().PID())
	_ = killed.conn.PgConn().Conn().Close() // as the kernel does for a killed process
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := a.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed session still exists after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	within(t, 20*time.Second, "RevokeGrant after a replica was killed", func() error { return a.RevokeGrant(t.Context(), g.ID) })
}

// The bookkeeping of one wait: early answers, the store's own session,
// hidden sessions, lagging replicas.
func TestBarrierBookkeeping(t *testing.T) {
	l := &logs{}
	var bs barriers
	self, other, third := "000000000000000a", "000000000000000b", "000000000000000c"
	bs.init(slog.New(l), self)

	b, id := bs.open()
	bs.ack(id + " " + other) // before the list came back
	bs.expect(b, []string{self + " ? 1", other + " 10.0.0.2 2", third + " 10.0.0.3 3"})
	select {
	case <-b.done:
		t.Fatal("done while the third replica has not answered")
	default:
	}
	bs.ack(id + " " + third)
	<-b.done
	bs.close(id)

	// Own session hidden: wait for it (the request reaching it), warn once.
	for range 2 {
		b, id = bs.open()
		bs.expect(b, nil)
		bs.ack(id + " " + self)
		<-b.done
		bs.close(id)
	}
	if n := len(l.matching("WARN", "does not show this replica's own listening session")); n != 1 {
		t.Errorf("%d warnings about hidden sessions, want 1: %q", n, l.lines)
	}

	// A replica that misses a deadline is lagging, and is forgotten once
	// its session is gone.
	b, id = bs.open()
	bs.expect(b, []string{self + " ? 1", other + " 10.0.0.2 2"})
	if got := bs.missed(b); len(got) != 1 || !strings.HasPrefix(got[0], other+" (10.0.0.2, backend pid 2)") {
		t.Fatalf("missed %q", got)
	}
	bs.close(id)
	b, id = bs.open()
	bs.expect(b, []string{self + " ? 1", other + " 10.0.0.2 2"})
	<-b.done // not waited for
	bs.close(id)
	b, id = bs.open()
	bs.expect(b, []string{self + " ? 1"})
	bs.close(id)
	if got := bs.laggingReplicas(); len(got) != 0 {
		t.Errorf("lagging %v after its session is gone, want none", got)
	}

	// Losing the listener ends every wait, with nothing missed.
	b, _ = bs.open()
	bs.expect(b, []string{self + " ? 1", third + " 10.0.0.3 3"})
	bs.setListening(false)
	<-b.done
	if got := bs.missed(b); got != nil {
		t.Errorf("missed %q after the listener was lost, want none", got)
	}
	if b, _ := bs.open(); b != nil {
		t.Error("a wait opened while not listening")
	}
}
