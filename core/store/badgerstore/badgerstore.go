package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/core/store/internal/changefeed"
)

var (
	// ErrLocked is returned (wrapped) by Open when another process is using
	// the data directory.
	ErrLocked = errors.New("data directory is locked")
	// ErrEncryptionKey is returned (wrapped) by Open when the encryption
	// key does not fit the data directory: the directory was written with a
	// different key, with a key when none was given, or without one when a
	// key was given; or the key is not 16, 24 or 32 bytes long.
	ErrEncryptionKey = errors.New("encryption key does not fit the data directory")
)

// Defaults for the zero values of Options.
const (
	DefaultDir            = "./data"
	DefaultGCInterval     = 5 * time.Minute
	DefaultMemTableSize   = 8 << 20
	DefaultNumMemtables   = 2
	DefaultBlockCacheSize = 8 << 20
	DefaultIndexCacheSize = 4 << 20
	// minMemTableSize keeps a transaction (15% of a memtable) larger than
	// valueThreshold, as Badger requires.
	minMemTableSize = 1 << 20
	// valueLogFileSize bounds one value-log file; a plugin value (1 MiB at
	// most) always fits.
	valueLogFileSize = 64 << 20
	// valueThreshold: values up to this size live in the LSM tree next to
	// their keys; larger ones (big plugin values) go to the value log.
	valueThreshold = 4 << 10
	// maxAttempts bounds the retries of a transaction on a write conflict.
	maxAttempts = 100
	// gcDiscardRatio is the share of stale data in a value-log file above
	// which GC rewrites it.
	gcDiscardRatio = 0.5
	// maxIDLen bounds every ID, hash and e-mail used in a key.
	maxIDLen     = 1024
	lockFileName = "toolgate.lock"
)

// Options configures Open. The zero value is usable: every zero field means
// the default documented on it.
//
// Memory: Badger's own defaults (64 MiB memtables, five of them, a 256 MiB
// block cache) suit a database server, not a process that must idle under
// 150 MiB with its plugins loaded. The defaults here keep Badger to roughly
// MemTableSize*NumMemtables + BlockCacheSize + IndexCacheSize of heap at
// most (about 28 MiB), which is plenty for toolgate's small records.
type Options struct {
	// Dir is the data directory, created if missing. Default "./data".
	Dir string
	// EncryptionKey turns on encryption at rest (AES, Badger's own
	// WithEncryptionKey) when not empty. It must be 16, 24 or 32 bytes. A
	// directory written with a key can only be opened with the same key.
	EncryptionKey []byte
	// SyncWrites fsyncs every commit before a method returns, so a returned
	// nil survives a power loss, at the cost of one fsync per write (a few
	// hundred microseconds to milliseconds each, depending on the disk).
	// Without it a returned nil survives a crash of the process but not of
	// the machine. The server turns it on by default. Default false (the
	// zero value of a bool), so callers must ask for it.
	SyncWrites bool
	// GCInterval is how often the store runs GarbageCollect on its own.
	// Default 5 minutes; a negative value turns the periodic run off.
	GCInterval time.Duration
	// Logger receives the store's and Badger's logs; Badger's INFO chatter
	// goes to the debug level. Default slog.Default().
	Logger *slog.Logger
	// MemTableSize is the size in bytes of one Badger memtable, at least
	// 1 MiB. It also bounds one transaction to about 15% of it. Default 8 MiB.
	MemTableSize int64
	// NumMemtables is how many memtables Badger keeps in memory before
	// stalling writes. Default 2.
	NumMemtables int
	// BlockCacheSize is the size in bytes of Badger's block cache. Default
	// 8 MiB.
	BlockCacheSize int64
	// IndexCacheSize is the size in bytes of Badger's table-index and bloom
	// filter cache. Default 4 MiB.
	IndexCacheSize int64

	// afterGC, when set (by tests), is called after every periodic
	// GarbageCollect with its result.
	afterGC func(error)
}

func (o *Options) setDefaults() {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemTableSize <= 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.NumMemtables <= 0 {
		o.NumMemtables = DefaultNumMemtables
	}
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = DefaultBlockCacheSize
	}
	if o.IndexCacheSize <= 0 {
		o.IndexCacheSize = DefaultIndexCacheSize
	}
}

// Store is a store.Store on Badger. Create it with Open.
type Store struct {
	db     *badger.DB
	log    *slog.Logger
	lock   *dirLock
	seq    *badger.Sequence // audit record IDs
	dir    string
	stopGC chan struct{}
	gcDone chan struct{}

	// mu guards closed: every operation holds it for reading while it runs,
	// Close takes it for writing.
	mu     sync.RWMutex
	closed bool

	closeOnce sync.Once
	closeErr  error

	watch changefeed.Feed
}

// Open opens (creating if needed) the store in opts.Dir. It fails with an
// error wrapping ErrLocked if another process uses the directory, and one
// wrapping ErrEncryptionKey if the key does not fit.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts.setDefaults()
	if n := len(opts.EncryptionKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("open store: %w: key is %d bytes, want 16, 24 or 32", ErrEncryptionKey, n)
	}
	if opts.MemTableSize < minMemTableSize {
		return nil, fmt.Errorf("open store: memtable size %d is below the minimum of %d bytes", opts.MemTableSize, minMemTableSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open store: resolve %q: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: create data directory: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFileName))
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("open store: %w: data directory %q is in use by another toolgate process", ErrLocked, dir)
		}
		return nil, fmt.Errorf("open store: lock data directory %q: %w", dir, err)
	}

	bopts := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(opts.SyncWrites).
		WithMemTableSize(opts.MemTableSize).
		WithNumMemtables(opts.NumMemtables).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(opts.IndexCacheSize).
		WithValueLogFileSize(valueLogFileSize).
		WithValueThreshold(valueThreshold).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		WithCompression(options.Snappy).
		WithCompactL0OnClose(true)
	if len(opts.EncryptionKey) > 0 {
		bopts = bopts.WithEncryptionKey(append([]byte(nil), opts.EncryptionKey...))
	}
	db, err := badger.Open(bopts)
	if err != nil {
		lock.release()
		msg := err.Error()
		switch {
		case errors.Is(err, badger.ErrEncryptionKeyMismatch) || strings.Contains(msg, badger.ErrEncryptionKeyMismatch.Error()):
			if len(opts.EncryptionKey) == 0 {
				return nil, fmt.Errorf("open store: %w: data directory %q is encrypted and no encryption key was given", ErrEncryptionKey, dir)
			}
			return nil, fmt.Errorf("open store: %w: data directory %q was written with a different encryption key or without one", ErrEncryptionKey, dir)
		case strings.Contains(msg, "Cannot acquire directory lock"):
			return nil, fmt.Errorf("open store: %w: data directory %q is in use by another toolgate process", ErrLocked, dir)
		}
		return nil, fmt.Errorf("open store: open badger in %q: %w", dir, err)
	}
	s := &Store{
		db:     db,
		log:    opts.Logger,
		lock:   lock,
		dir:    dir,
		stopGC: make(chan struct{}),
		gcDone: make(chan struct{}),
	}
	if s.seq, err = db.GetSequence([]byte(keyAuditSequence), 1000); err != nil {
		_ = db.Close()
		lock.release()
		return nil, fmt.Errorf("open store: audit sequence: %w", err)
	}
	go s.gcLoop(opts.GCInterval, opts.afterGC)
	s.log.Info("store opened", "dir", dir, "encrypted", len(opts.EncryptionKey) > 0, "sync_writes", opts.SyncWrites)
	return s, nil
}

// Close stops the background GC, waits for running operations, ends every
// Watch, flushes and closes the database and releases the directory.
// Calling it again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.stopGC) // cancels a running GarbageCollect of the GC loop
	<-s.gcDone
	s.mu.Lock() // waits for running operations
	s.closed = true
	s.mu.Unlock()
	s.watch.Close()
	var errs []error
	if err := s.seq.Release(); err != nil {
		errs = append(errs, fmt.Errorf("release audit sequence: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close badger: %w", err))
	}
	s.lock.release()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	s.log.Info("store closed", "dir", s.dir)
	return nil
}

// Ping reports ErrClosed after Close and otherwise checks that the database
// answers a read.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(keyAuditSequence))
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return nil
	})
}

// begin takes the read side of mu for the duration of one operation. It
// fails with ErrClosed after Close and with the context's error if ctx is done.
func (s *Store) begin(ctx context.Context, op string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("%s: %w", op, store.ErrClosed)
	}
	return s.mu.RUnlock, nil
}

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, op string, fn func(txn *badger.Txn) error) error {
	done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// update runs fn in a read-write transaction and commits it, retrying the
// whole transaction (fn included) when Badger reports a write conflict.
// Changes fn returns are announced to watchers once the commit succeeded.
func (s *Store) update(ctx context.Context, op string, fn func(txn *badger.Txn) ([]store.Change, error)) error {
	done, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	backoff := 50 * time.Microsecond
	for attempt := 1; ; attempt++ {
		var changes []store.Change
		err := s.db.Update(func(txn *badger.Txn) error {
			var err error
			changes, err = fn(txn)
			return err
		})
		if err == nil {
			s.watch.Announce(changes)
			return nil
		}
		if !errors.Is(err, badger.ErrConflict) {
			return fmt.Errorf("%s: %w", op, err)
		}
		if attempt == maxAttempts {
			return fmt.Errorf("%s: gave up after %d write conflicts: %w", op, attempt, err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Millisecond)
	}
}

// badgerLogger sends Badger's logs to slog; its INFO chatter (compactions,
// replays) goes to the debug level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level slog.Level, format string, args ...any) {
	if !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (b badgerLogger) Errorf(format string, args ...any)   { b.log(slog.LevelError, format, args...) }
func (b badgerLogger) Warningf(format string, args ...any) { b.log(slog.LevelWarn, format, args...) }
func (b badgerLogger) Infof(format string, args ...any)    { b.log(slog.LevelDebug, format, args...) }
func (b badgerLogger) Debugf(format string, args ...any)   { b.log(slog.LevelDebug-4, format, args...) }

var (
	_ store.Store   = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)
	_ badger.Logger = badgerLogger{}
)
