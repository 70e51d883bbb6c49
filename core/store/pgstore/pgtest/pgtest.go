// Package pgtest gives tests a fresh, empty PostgreSQL database each.
//
// A test package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and each test asks for a database of its own:
//
//	url := pgtest.URL(t) // a new database, dropped when t ends
//	s, err := pgstore.Open(t.Context(), url, pgstore.Options{})
//
// The server comes from, in order:
//
//  1. $TOOLGATE_TEST_POSTGRES_URL: the URL of a running server whose user
//     may create databases (.ci/postgres starts one and prints it);
//  2. a throwaway cluster started from Debian's PostgreSQL binaries
//     (/usr/lib/postgresql/*/bin, or initdb and postgres on $PATH): once
//     per test binary, on the first URL call, listening on a free
//     loopback port with fsync off, in a temporary directory removed when
//     Main returns. As root it runs as the postgres user, since PostgreSQL
//     refuses to run as root;
//  3. otherwise URL skips the test with a message naming what to install,
//     unless $CI is set: CI must not skip these tests, so there it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the URL of a running
// server to use instead of starting one.
const EnvURL = "TOOLGATE_TEST_POSTGRES_URL"

// errNoServer means no PostgreSQL could be found or started.
var errNoServer = errors.New("no PostgreSQL server")

var (
	mainRan atomic.Bool
	once    sync.Once
	srv     *server
	srvErr  error

	// spare holds a database created ahead of the next URL call, and bg
	// counts the creations and drops still running in the background;
	// Main waits for them.
	spare = make(chan string, 1)
	bg    sync.WaitGroup
)

// server is where test databases are created.
type server struct {
	admin *url.URL // a URL of the maintenance database "postgres"

	// Set when pgtest started the cluster itself.
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
}

// Main runs the tests of m and then stops the cluster pgtest started, if
// any. Call it from TestMain and pass its result to os.Exit.
func Main(m *testing.M) int {
	mainRan.Store(true)
	code := m.Run()
	bg.Wait()
	select {
	case name := <-spare:
		srv.drop(name)
	default:
	}
	if srv != nil && srv.cmd != nil {
		if err := srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// URL returns the URL of a new, empty database (UTF-8, "C" collation),
// dropped when t ends. It skips t when no server can be found or started,
// or fails it when $CI is set.
func URL(t testing.TB) string {
	t.Helper()
	ensure(t)
	var name string
	select {
	case name = <-spare:
	default:
		var err error
		if name, err = srv.create(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	// Create the next test's database, and drop this one when t is done,
	// in the background: both take a while on a busy machine.
	bg.Go(func() {
		next, err := srv.create()
		if err != nil {
			return // the next URL call creates its own and reports the error
		}
		select {
		case spare <- next:
		default:
			srv.drop(next)
		}
	})
	t.Cleanup(func() { bg.Go(func() { srv.drop(name) }) })
	u := *srv.admin
	u.Path = "/" + name
	return u.String()
}

// ensure finds or starts the server once, or skips or fails t.
func ensure(t testing.TB) {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("pgtest: run the package's tests through pgtest.Main: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	once.Do(func() { srv, srvErr = connect() })
	switch {
	case errors.Is(srvErr, errNoServer) && os.Getenv("CI") == "":
		t.Skipf("PostgreSQL tests skipped: %v", srvErr)
	case srvErr != nil:
		t.Fatalf("pgtest: %v", srvErr)
	}
}

// AdminURL returns the URL of the server's maintenance database, for
// tests that need to act on the server itself (for example to end other
// sessions with pg_terminate_backend). It skips or fails like URL.
func AdminURL(t testing.TB) string {
	t.Helper()
	ensure(t)
	return srv.admin.String()
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// create creates a new, empty database and returns its name.
func (s *server) create() (string, error) {
	name := "toolgate_test_" + randomHex()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return name, nil
}

// drop drops a database, ending any session still connected to it.
func (s *server) drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: drop database %s: %v\n", name, err)
	}
}

// exec runs one statement on the maintenance database.
func (s *server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// connect finds the server: $TOOLGATE_TEST_POSTGRES_URL, or a cluster it
// starts.
func connect() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if raw := os.Getenv(EnvURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("$%s is not a postgres:// URL", EnvURL)
		}
		s := &server{admin: u}
		if err := s.exec(ctx, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("$%s: %w", EnvURL, err)
		}
		return s, nil
	}
	initdb, postgres := findBinaries()
	if initdb == "" {
		return nil, fmt.Errorf("%w: set $%s to a server's URL, or install PostgreSQL (Debian: apt-get install postgresql)", errNoServer, EnvURL)
	}
	s, err := start(ctx, initdb, postgres)
	if err != nil {
		return nil, fmt.Errorf("%w: starting a throwaway cluster from %s failed: %w", errNoServer, filepath.Dir(initdb), err)
	}
	return s, nil
}

// findBinaries returns initdb and postgres of the newest PostgreSQL in
// /usr/lib/postgresql (Debian's layout), else from $PATH; "" if none.
func findBinaries() (initdb, postgres string) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExecutable(i) && isExecutable(p) {
			return i, p
		}
	}
	i, err1 := exec.LookPath("initdb")
	p, err2 := exec.LookPath("postgres")
	if err1 != nil || err2 != nil {
		return "", ""
	}
	return i, p
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// start initialises a cluster in a new temporary directory and starts it
// on a free loopback port.
func start(ctx context.Context, initdb, postgres string) (_ *server, err error) {
	removeStale()
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	attr, err := procAttr(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	init := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	init.SysProcAttr = attr
	init.Dir = dir
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 5))
	}
	logPath := filepath.Join(dir, "postgres.log")
	var lastErr error
	for range 3 { // a free port can be taken between finding and binding it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startPostmaster(ctx, postgres, dir, data, logPath, port, attr)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startPostmaster(ctx context.Context, postgres, dir, data, logPath string, port int, attr *syscall.SysProcAttr) (*server, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.SysProcAttr = attr
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &server{
		admin: &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"},
		dir:   dir,
		cmd:   cmd,
		done:  make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.exec(pctx, "SELECT 1")
		cancel()
		if err == nil {
			return s, nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-s.done:
			t.Stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited: %s", lastLines(string(log), 5))
		case <-ctx.Done():
			t.Stop()
			_ = cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("postgres did not accept connections: %w", err)
		case <-t.C:
		}
	}
}

// stop shuts the cluster down (fast shutdown, then a kill after 30s) and
// removes its directory.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove the cluster directory: %w", err)
	}
	return nil
}

// dirPattern names the temporary directories of the clusters pgtest
// starts.
const dirPattern = "toolgate-pgtest-"

// staleAfter is how old a cluster directory without a running postmaster
// must be before removeStale deletes it: far longer than initdb takes.
const staleAfter = 10 * time.Minute

// removeStale deletes the directories of clusters whose test binary died
// without running Main's cleanup (a test timeout panics, a kill): no
// postmaster runs there any more, and they are old.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < staleAfter {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pid), "\n")
			if n, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && processAlive(n) {
				continue
			}
		}
		_ = os.RemoveAll(d)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
