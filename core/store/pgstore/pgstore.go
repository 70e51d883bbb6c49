package pgstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/internal/changefeed"
)

// Defaults for the zero values of Options.
const (
	DefaultSweepInterval     = 5 * time.Minute
	DefaultMaxConns          = 10
	DefaultQueryTimeout      = 10 * time.Second
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultAckTimeout        = 2 * time.Second
	// maxAttempts bounds the retries of a transaction that hit a deadlock
	// or a serialization failure.
	maxAttempts = 20
	// maxIDLen bounds every ID, hash and e-mail used as a key, as in
	// badgerstore.
	maxIDLen = 1024
)

// ErrURL is returned (wrapped) by Open when the connection URL cannot be
// parsed. The error does not quote the URL, which may hold a password.
var ErrURL = errors.New("malformed PostgreSQL connection URL")

// Options configures Open. The zero value is usable: every zero field means
// the default documented on it.
type Options struct {
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
	// SweepInterval is how often the store tries to remove expired rows;
	// of all the replicas sharing the database, one at a time does it.
	// Default 5 minutes; a negative value turns the periodic sweep off.
	SweepInterval time.Duration
	// MaxConns bounds the connection pool (the listening connection comes
	// on top). Default 10, unless the URL sets pool_max_conns.
	MaxConns int32
	// QueryTimeout bounds every operation whose context has no earlier
	// deadline. Default 10 seconds.
	QueryTimeout time.Duration
	// HeartbeatInterval is how long the listening connection may stay
	// silent before it is pinged; a ping that fails or takes longer than
	// this (and at least 5 seconds) suspends the watchers
	// (store.ChangeSuspended) until the connection is back. Default 5
	// seconds.
	HeartbeatInterval time.Duration
	// AckTimeout bounds how long an operation that revokes or changes
	// what a cached bearer token stands for (RevokeGrant, DeleteToken,
	// DeleteClient, UpdateGrant, RotateRefreshToken with an update) waits,
	// after it committed, for every other live replica to confirm that it
	// has handed the change to its watchers (see "Changes across
	// replicas" in the package doc). A replica that does not confirm in
	// time is named in a warning and not waited for again until it
	// answers; the operation still succeeds, since its change is
	// committed. Default 2 seconds; a negative value turns the wait off,
	// leaving other replicas to learn of changes asynchronously.
	AckTimeout time.Duration

	// afterSweep, when set (by tests), is called after every periodic
	// sweep with whether this store held the sweep lock and the result.
	afterSweep func(ran bool, err error)
	// afterHeartbeat, when set (by tests), is called after every ping of
	// the listening connection that succeeded.
	afterHeartbeat func()
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
}

// Store is a store.Store and store.Watcher on PostgreSQL. Create it with
// Open; it is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the listening connection
	log      *slog.Logger
	opts     Options
	instance string // tags this store's notifications and names its listener, see watch.go

	// mu guards closed: every operation holds it for reading while it
	// runs, Close takes it for writing.
	mu     sync.RWMutex
	closed bool

	closeOnce sync.Once

	stopBG context.CancelFunc
	quit   <-chan struct{} // closed by Close, before it waits for bg
	bg     sync.WaitGroup

	watch    changefeed.Feed
	barriers barriers
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), creates or migrates the schema, starts listening for
// other replicas' changes and starts the periodic sweep. ctx bounds the
// connection, the migration and the first LISTEN.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts.setDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts passwords from parse errors only on a best-effort
		// basis, so its message is not passed on.
		return nil, fmt.Errorf("open store: %w", ErrURL)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "toolgate"
	}
	// Times travel as timestamptz and are converted to UTC on read; the
	// session time zone only matters to operators reading the tables.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// The store's locking (FOR UPDATE, conditional UPDATEs) is designed for
	// READ COMMITTED, whatever the server's default.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	listenCfg := cfg.ConnConfig.Copy()
	// Renamed listenerAppPrefix+instance once it listens (see listen).
	listenCfg.RuntimeParams["application_name"] = cfg.ConnConfig.RuntimeParams["application_name"] + " listener"

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: create pool: %w", err)
	}
	s := &Store{
		pool:     pool,
		connCfg:  listenCfg,
		log:      opts.Logger,
		opts:     opts,
		instance: newInstanceID(),
	}
	if err := migrate(ctx, pool, s.log); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: %w", oneLine{err})
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	s.stopBG = cancel
	s.quit = bgCtx.Done()
	s.barriers.init(s.log, s.instance)
	l, err := s.listen(ctx)
	if err != nil {
		cancel()
		pool.Close()
		return nil, fmt.Errorf("open store: listen for changes: %w", oneLine{err})
	}
	s.bg.Add(2)
	go s.listenLoop(bgCtx, l)
	go s.sweepLoop(bgCtx)
	s.log.Info("store opened", "backend", "postgres", "database", cfg.ConnConfig.Database, "max_conns", cfg.MaxConns)
	return s, nil
}

func newInstanceID() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Close stops the sweep and the listener, waits for running operations,
// ends every Watch and closes the pool. Calling it again returns the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopBG() // also closes quit, which ends every settle
		s.bg.Wait()
		s.mu.Lock() // waits for running operations
		s.closed = true
		s.mu.Unlock()
		s.watch.Close()
		s.pool.Close()
		s.log.Info("store closed", "backend", "postgres")
	})
	return nil
}

// Ping reports ErrClosed after Close and otherwise checks that the
// database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, done, err := s.begin(ctx, "ping")
	if err != nil {
		return err
	}
	defer done()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// begin takes the read side of mu for one operation and bounds ctx by
// QueryTimeout. It fails with ErrClosed after Close and with the
// context's error if ctx is done.
func (s *Store) begin(ctx context.Context, op string) (context.Context, func(), error) {
	return s.beginWithin(ctx, op, s.opts.QueryTimeout)
}

// beginWithin is begin with a timeout of its own; zero means none.
func (s *Store) beginWithin(ctx context.Context, op string, timeout time.Duration) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, fmt.Errorf("%s: %w", op, store.ErrClosed)
	}
	cancel := context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); timeout > 0 && (!ok || time.Until(d) > timeout) {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	}
	return ctx, func() { cancel(); s.mu.RUnlock() }, nil
}

// do runs fn, one operation outside a transaction.
func (s *Store) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, mapErr(err))
	}
	return nil
}

// tx runs fn in a transaction and commits it. The changes fn returns are
// sent to the other replicas with pg_notify inside the transaction and
// announced to this store's watchers after the commit was attempted (an
// announcement too many only drops a cache entry); once committed, tx
// waits for the other replicas to have handled them (settle). A deadlock
// or serialization failure reruns the whole transaction, fn included.
func (s *Store) tx(ctx context.Context, op string, fn func(ctx context.Context, tx pgx.Tx) ([]store.Change, error)) error {
	ctx, done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	backoff := time.Millisecond
	for attempt := 1; ; attempt++ {
		announced, err := s.runTx(ctx, fn)
		if err == nil {
			if announced {
				s.settle(ctx, op)
			}
			return nil
		}
		if !retryable(err) || attempt == maxAttempts {
			return fmt.Errorf("%s: %w", op, mapErr(err))
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// runTx runs fn in a transaction, notifies the changes it returns and
// commits; announced reports whether there were any.
func (s *Store) runTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) ([]store.Change, error)) (announced bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			// Rollback on a broken connection fails too; the server rolls
			// back on its own then.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	changes, err := fn(ctx, tx)
	if err != nil {
		return false, err
	}
	if len(changes) > 0 {
		if _, err := tx.Exec(ctx, sqlNotify, s.payloads(changes)); err != nil {
			return false, fmt.Errorf("notify: %w", err)
		}
	}
	err = tx.Commit(ctx)
	s.watch.Announce(changes)
	return len(changes) > 0, err
}

// oneLine is err with its message on one line: pgx reports a failed
// connection attempt with one line per address tried.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	return strings.Join(strings.FieldsFunc(e.err.Error(), func(r rune) bool { return r == '\n' || r == '\t' }), " ")
}

func (e oneLine) Unwrap() error { return e.err }

// retryable reports a failure that running the transaction again can cure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// mapErr adds the store sentinel that a PostgreSQL error means.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w (%w)", store.ErrNotFound, err)
	case !errors.As(err, &pgErr):
		return err
	case pgErr.Code == "23505": // unique_violation
		return fmt.Errorf("%w (%w)", store.ErrAlreadyExists, err)
	case pgErr.Code == "23503": // foreign_key_violation: the record it refers to is gone
		return fmt.Errorf("%w (%w)", store.ErrNotFound, err)
	}
	return err
}

// live is the SQL condition "the row is not expired at $n".
func live(alias string, n int) string {
	return fmt.Sprintf("(%[1]sexpires_at IS NULL OR %[1]sexpires_at > $%[2]d)", alias, n)
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// fromNull maps NULL to the zero time and any other time to UTC.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// validID checks an ID, hash or other key part.
func validID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", store.ErrInvalid, what)
	}
	return validKeyPart(what, id)
}

// validKeyPart is validID for a part that may be empty. PostgreSQL text
// holds neither NUL nor invalid UTF-8.
func validKeyPart(what, s string) error {
	if len(s) > maxIDLen {
		return fmt.Errorf("%w: %s longer than %d bytes", store.ErrInvalid, what, maxIDLen)
	}
	for i, r := range s {
		if r == 0 {
			return fmt.Errorf("%w: %s contains NUL", store.ErrInvalid, what)
		}
		if r == 0xfffd && !validRuneAt(s, i) {
			return fmt.Errorf("%w: %s is not valid UTF-8", store.ErrInvalid, what)
		}
	}
	return nil
}

// validRuneAt reports whether the U+FFFD decoded at s[i] is really there
// rather than the mark of an invalid byte.
func validRuneAt(s string, i int) bool {
	return len(s) >= i+3 && s[i:i+3] == "\uFFFD"
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.Watcher      = (*Store)(nil)
	_ store.AuditBatcher = (*Store)(nil)
)
