package pgstore

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/pgstore/pgtest"
	"github.com/toolgate/toolgate/core/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testLogger sends the store's logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testOptions are the options the tests open stores with: no periodic
// sweep unless a test asks for one, a short heartbeat.
func testOptions(t testing.TB) Options {
	return Options{Logger: testLogger(t), SweepInterval: -1, HeartbeatInterval: time.Second}
}

// TestConformance runs the shared suite. Each subtest gets a database of
// its own; reopening it is opening the same URL again.
func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) func() (store.Store, error) {
		url := pgtest.URL(t)
		return func() (store.Store, error) { return Open(t.Context(), url, testOptions(t)) }
	})
}

// Replicas starting together migrate the schema once between them.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	const replicas = 4
	errs := make(chan error, replicas)
	stores := make(chan *Store, replicas)
	for range replicas {
		go func() {
			s, err := Open(t.Context(), url, testOptions(t))
			if err == nil {
				stores <- s
			}
			errs <- err
		}()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	close(stores)
	var s *Store
	for x := range stores {
		t.Cleanup(func() { x.Close() })
		s = x
	}
	var versions, applied int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&applied, &versions); err != nil {
		t.Fatal(err)
	}
	if applied != len(migrations) || versions != len(migrations) {
		t.Fatalf("schema_migrations holds %d rows for %d versions, want %d each", applied, versions, len(migrations))
	}
}

// A database migrated by a newer toolgate is refused with a clear error.
func TestOpenRefusesNewerSchema(t *testing.T) {
	url := pgtest.URL(t)
	s, err := Open(t.Context(), url, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, schemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(t.Context(), url, testOptions(t))
	if err == nil || !strings.Contains(err.Error(), "newer than this toolgate") {
		t.Fatalf("Open of a newer schema: %v, want a refusal naming the versions", err)
	}
}

// Errors never quote the connection URL's password.
func TestOpenErrorsHidePassword(t *testing.T) {
	const password = "s3cr3t-Pa55"
	for _, url := range []string{
		"postgres://toolgate:" + password + "@127.0.0.1:1/toolgate?connect_timeout=2",
		"postgres://toolgate:" + password + "@[bad/x",
		"host=127.0.0.1 port=1 password=" + password + " connect_timeout=2 sslmode=disable",
		"postgres://toolgate:" + password + "@127.0.0.1:1/toolgate?pool_max_conns=nope",
	} {
		_, err := Open(t.Context(), url, testOptions(t))
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open error quotes the password: %v", err)
		}
	}
	_, err := Open(t.Context(), "postgres://x:"+password+"@[bad/x", testOptions(t))
	if !errors.Is(err, ErrURL) {
		t.Errorf("malformed URL: %v, want ErrURL", err)
	}
}

// The periodic sweep runs on one replica at a time: while another session
// holds the sweep lock no store sweeps, and once it is free one does.
func TestSweepTakesTurns(t *testing.T) {
	url := pgtest.URL(t)
	type result struct{ ran bool }
	results := make(chan result, 64)
	opts := testOptions(t)
	opts.SweepInterval = 20 * time.Millisecond
	opts.afterSweep = func(ran bool, err error) {
		if err != nil {
			t.Errorf("sweep: %v", err)
		}
		select {
		case results <- result{ran}:
		default:
		}
	}
	holder, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	var locked bool
	if err := holder.QueryRow(t.Context(), `SELECT pg_try_advisory_lock($1)`, sweepLockKey).Scan(&locked); err != nil || !locked {
		t.Fatalf("take the sweep lock: %v, %v", locked, err)
	}
	s, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.KVPut(t.Context(), "p", "k", []byte("v"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := holder.QueryRow(t.Context(), `SELECT count(*) FROM plugin_kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 3 {
		if r := <-results; r.ran {
			t.Fatal("a store swept while another session held the sweep lock")
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows left, want the expired one still there", n)
	}
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, sweepLockKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-results:
			if !r.ran {
				continue
			}
			if n := count(); n != 0 {
				t.Fatalf("%d rows left after a sweep, want 0", n)
			}
			return
		case <-deadline:
			t.Fatal("no sweep within 10s of the lock being free")
		}
	}
}
