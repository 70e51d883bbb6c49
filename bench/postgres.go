package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// envTestPostgres names a running PostgreSQL server (an admin URL) to use
// instead of starting one; pgtest and .ci/postgres use the same name.
const envTestPostgres = "TOOLGATE_TEST_POSTGRES_URL"

// backendResults is the PostgreSQL-versus-Badger comparison for the report.
type backendResults struct {
	// note says why nothing was measured, or what the server was.
	note    string
	clients int
	load    map[string]stats // "badger", "postgres"
	extras  []extra
}

// backends are the store backends compared, in report order.
var backends = []string{"badger", "postgres"}

// pgServer is the PostgreSQL server the comparison runs on.
type pgServer struct {
	admin string // URL of its maintenance database
	desc  string // version and durability settings, for the report
	fsync bool   // whether commits reach the disk
	stop  func()
}

// startPostgres returns the server named by $TOOLGATE_TEST_POSTGRES_URL,
// or starts a throwaway cluster with .ci/postgres (the tests' cluster:
// fsync off), stopped and removed by stop.
func startPostgres(ctx context.Context, o options) (*pgServer, error) {
	if u := os.Getenv(envTestPostgres); u != "" {
		s := &pgServer{admin: u, stop: func() {}}
		return s, s.describe(ctx, "$"+envTestPostgres)
	}
	// Not under the harness's private temp folder: as root, .ci/postgres
	// runs the cluster as the postgres user, who must reach its folder.
	dir, err := os.MkdirTemp("", "toolgate-bench-postgres-")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("PostgreSQL folder: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("free port: %w", err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	script := filepath.Join(o.root, ".ci", "postgres")
	env := append(os.Environ(), "TOOLGATE_CI_POSTGRES_DIR="+filepath.Join(dir, "cluster"), "TOOLGATE_CI_POSTGRES_PORT="+port)
	stop := func() {
		cmd := exec.Command(script, "stop")
		cmd.Env = env
		_ = cmd.Run()
		os.RemoveAll(dir)
	}
	start := exec.CommandContext(ctx, script, "start")
	start.Env = env
	out, err := start.Output()
	if err != nil {
		stop()
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("start PostgreSQL with .ci/postgres: %w: %s", err, stderr)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		stop()
		return nil, errors.New("start PostgreSQL with .ci/postgres: it printed no URL")
	}
	s := &pgServer{admin: lines[len(lines)-1], stop: stop}
	if err := s.describe(ctx, "a throwaway cluster on this machine (.ci/postgres)"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// exec runs statements on the maintenance database.
func (s *pgServer) exec(ctx context.Context, stmts ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("PostgreSQL %q: %w", q, err)
		}
	}
	return nil
}

// describe records the server's version and durability settings.
func (s *pgServer) describe(ctx context.Context, where string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version, fsync, syncCommit string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')").Scan(&version, &fsync, &syncCommit); err != nil {
		return fmt.Errorf("PostgreSQL settings: %w", err)
	}
	s.fsync = fsync == "on" && syncCommit != "off"
	s.desc = fmt.Sprintf("PostgreSQL %s, %s, fsync %s, synchronous_commit %s, over loopback TCP", version, where, fsync, syncCommit)
	return nil
}

// createDatabase creates an empty database for toolgate and returns its
// URL and a function dropping it.
func (s *pgServer) createDatabase(ctx context.Context) (string, func(), error) {
	name := "toolgate_bench_" + strings.ToLower(rand.Text()[:12])
	if err := s.exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return "", nil, err
	}
	u, err := replaceDatabase(s.admin, name)
	if err != nil {
		return "", nil, err
	}
	return u, func() { _ = s.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") }, nil
}

// replaceDatabase returns the URL admin with its database set to name.
func replaceDatabase(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("the PostgreSQL URL is not a postgres:// URL") // never quote it: it may hold a password
	}
	u.Path = "/" + name
	return u.String(), nil
}

// compareBackends runs the same toolgate on Badger and on PostgreSQL
// under the same load (tools/call add at the highest concurrency,
// o.rounds interleaved rounds) and the store benchmarks of both; when no
// PostgreSQL can be started it records why instead.
func compareBackends(ctx context.Context, res *results, o options, tmp, badgerData, pluginsDir, pluginsConfig string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	top := o.levels[len(o.levels)-1]
	res.backends = &backendResults{clients: top, load: map[string]stats{}}
	pg, err := startPostgres(ctx, o)
	if err != nil {
		res.backends.note = "not measured: " + oneLine(err.Error())
		return nil
	}
	defer pg.stop()
	// Both durable, or neither: Badger's store.sync_writes follows the
	// server's fsync, so the comparison is of the engines, not the disk.
	res.backends.note = fmt.Sprintf("%s; Badger with store.sync_writes = %t to match", pg.desc, pg.fsync)
	dbURL, dropDB, err := pg.createDatabase(ctx)
	if err != nil {
		res.backends.note = "not measured: " + oneLine(err.Error())
		return nil
	}
	defer dropDB()

	servers := map[string]system{}
	for _, backend := range backends {
		so, data := o, badgerData
		so.env = append(append([]string(nil), o.env...), fmt.Sprintf("TOOLGATE_STORE_SYNC_WRITES=%t", pg.fsync))
		if backend == "postgres" {
			so.env = append(so.env, "TOOLGATE_STORE_BACKEND=postgres", "TOOLGATE_STORE_POSTGRES_URL="+dbURL)
			data = filepath.Join(tmp, "data-postgres")
		}
		tg, err := startToolgate(ctx, so, data, pluginsDir, pluginsConfig, false)
		if err != nil {
			return fmt.Errorf("toolgate on %s: %w", backend, err)
		}
		defer tg.stop()
		token, err := signIn(ctx, tg.public, "alice@example.com")
		if err != nil {
			return fmt.Errorf("sign in on %s: %w", backend, err)
		}
		servers[backend] = system{name: "toolgate-" + backend, url: tg.public + "/mcp", token: token, pid: tg.cmd.Process.Pid}
	}
	var seq atomic.Int64
	client := newLoadClient(top)
	defer client.CloseIdleConnections()
	runs := map[string][]run{}
	for round := range o.rounds {
		for k := range backends {
			backend := backends[(k+round)%len(backends)]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r := load(ctx, client, servers[backend], top, o.warmup, o.duration, &seq)
			log.Info("run", "round", round+1, "system", "toolgate-"+backend, "clients", top, "req/s", fmt.Sprintf("%.0f", r.throughput()), "errors", r.errs)
			runs[backend] = append(runs[backend], r)
		}
	}
	for backend, rs := range runs {
		res.backends.load[backend] = summarize(rs)
	}

	// Uncached token verification reads the token and its grant; the
	// store benchmarks time one read, and one audit batch write.
	if os.Getenv(envTestPostgres) == "" {
		if err := os.Setenv(envTestPostgres, pg.admin); err == nil { // pgstore's benchmarks use this server
			defer os.Unsetenv(envTestPostgres)
		}
	}
	for _, b := range []struct{ pkg, backend string }{{"./core/store/badgerstore/", "badger"}, {"./core/store/pgstore/", "postgres"}} {
		lines, err := goBench(ctx, o.root, "go", b.pkg, "^BenchmarkStore$/^(GetToken|AppendAuditBatch64)$", "-benchtime", "1s")
		if err != nil {
			res.warnings = append(res.warnings, err.Error())
			continue
		}
		for _, l := range lines {
			ns := l.metrics["ns/op"]
			if ns <= 0 {
				continue
			}
			what := map[string]string{
				"Store/GetToken":           "store read of one token (GetToken, the uncached part of a bearer verification, which also reads the grant)",
				"Store/AppendAuditBatch64": "store write of a batch of 64 audit records (AppendAuditBatch)",
			}[l.name]
			if what == "" {
				continue
			}
			res.backends.extras = append(res.backends.extras, extra{what + ", " + b.backend, fmt.Sprintf("%.0f/s (%.1f µs/op)", 1e9/ns, ns/1e3), ""})
		}
	}
	return nil
}
