package plugin

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/store"
)

// Defaults for plugin limits; plugins.toml overrides them per plugin and tool.
const (
	DefaultMemory      = 64 << 20
	DefaultTimeout     = 30 * time.Second
	DefaultMaxOutput   = 8 << 20
	DefaultDropInDir   = "plugins/dist"
	DefaultDebounce    = 250 * time.Millisecond
	DefaultHTTPTimeout = 30 * time.Second
	// DefaultStdioLimit caps the guest's stdout plus stderr logged per call.
	DefaultStdioLimit = 16 << 10
	// DefaultLogLimit caps the bytes of log lines a guest may write per call.
	DefaultLogLimit = 64 << 10
	// DefaultQueueTimeout is how long a call waits for a free instance of
	// its plugin before it is answered "busy".
	DefaultQueueTimeout = 10 * time.Second
	// DefaultMaxQueue is how many calls may wait for a free instance of one
	// plugin; one more is answered "busy" at once.
	DefaultMaxQueue = 64
	// DefaultIdleInstanceTTL is how long a warm instance beyond a plugin's
	// first may stay idle before it is closed.
	DefaultIdleInstanceTTL = 30 * time.Second
)

// Config configures a Host. The zero value of every field but CacheDir is a
// documented default.
type Config struct {
	// CacheDir is the directory of the wazero compilation cache, created
	// with mode 0700 if missing. It holds native code the host executes:
	// keep it owned by the server's user. Required; usually a directory
	// under the data directory.
	CacheDir string
	// PluginsFile is the path of plugins.toml. Empty means no file (unless
	// Plugins is set); so does a path where no file exists yet, which lets
	// an operator create it later and reload. Relative paths inside it resolve against its
	// directory. Reload re-reads it.
	PluginsFile string
	// Plugins, when non-nil, is used instead of reading PluginsFile (tests,
	// plugintest).
	Plugins *PluginsFile
	// DropInDir is the drop-in folder; default "plugins/dist". A missing
	// folder holds no plugins.
	DropInDir string
	// Watch makes the host watch DropInDir (fsnotify) and reload, debounced,
	// when a .wasm file is added, replaced or removed.
	Watch bool
	// Debounce is how long the watcher waits for the folder to be quiet
	// before reloading; default 250ms.
	Debounce time.Duration
	// PoolSize is the default number of warm instances (and concurrent
	// calls) per plugin; default GOMAXPROCS.
	PoolSize int
	// KV is the store behind the kv_* host functions. A plugin granted kv
	// is refused when KV is nil.
	KV store.PluginKV
	// Logger receives host and guest logs; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the host's Prometheus metrics; nil registers them
	// on a private registry (metrics are then not exported).
	Registerer prometheus.Registerer
	// LookupEnv reads the environment variables secrets name; default
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// HTTPTimeout bounds one outbound HTTP request when the guest gives no
	// timeout; default 30s. The call's deadline always applies.
	HTTPTimeout time.Duration
	// StdioLimit caps the guest stdout and stderr bytes logged per call;
	// default 16KiB. Output beyond it is dropped and counted.
	StdioLimit int
	// LogLimit caps the log-line bytes a guest may write per call; default
	// 64KiB.
	LogLimit int
	// QueueTimeout is how long a call waits for a free instance when all
	// of its plugin's pool_size calls are running; past it the call fails
	// with ErrKindBusy ("busy ...; try again"). The call's own timeout
	// still applies when it is shorter. Default DefaultQueueTimeout.
	QueueTimeout time.Duration
	// MaxQueue is how many calls may wait for a free instance of one
	// plugin; a call finding the queue full fails with ErrKindBusy at
	// once, so a flood of calls cannot pile up goroutines and memory.
	// Default DefaultMaxQueue; negative means no call waits.
	MaxQueue int
	// Interpreter runs plugins with wazero's interpreter instead of its
	// compiler. Slower calls, faster cold load; for tools, not servers.
	Interpreter bool
	// IdleInstanceTTL is how long a pooled plugin's warm instances beyond
	// the first may stay idle before they are closed (6-12 MiB each): a
	// burst grows the pool to pool_size, and the quiet after it shrinks it
	// back to one warm instance. A host-owned ticker checks every
	// IdleInstanceTTL/2 (at most every 5s), so an instance goes between
	// TTL and 1.5×TTL after its last call. Default DefaultIdleInstanceTTL;
	// negative never shrinks.
	//
	// The same ticker returns freed memory to the OS once calls have
	// stopped (one forced garbage collection per quiet spell, between 5s
	// and 10s after the last call with the default TTL), whatever the TTL.
	IdleInstanceTTL time.Duration

	// now is the clock of idle times; time.Now unless a test sets it.
	now func() time.Time
	// freeOSMemory returns freed memory to the OS, after a reload and
	// when calls have stopped; debug.FreeOSMemory unless a test sets it.
	freeOSMemory func()
}

func (c Config) withDefaults() (Config, error) {
	if c.CacheDir == "" {
		return c, errors.New("plugin host config: CacheDir is required")
	}
	if err := os.MkdirAll(c.CacheDir, 0o700); err != nil {
		return c, fmt.Errorf("plugin host config: create cache dir: %w", err)
	}
	if c.DropInDir == "" {
		c.DropInDir = DefaultDropInDir
	}
	if c.Debounce <= 0 {
		c.Debounce = DefaultDebounce
	}
	if c.PoolSize <= 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.LookupEnv == nil {
		c.LookupEnv = os.LookupEnv
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.StdioLimit <= 0 {
		c.StdioLimit = DefaultStdioLimit
	}
	if c.LogLimit <= 0 {
		c.LogLimit = DefaultLogLimit
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.IdleInstanceTTL == 0 {
		c.IdleInstanceTTL = DefaultIdleInstanceTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.freeOSMemory == nil {
		c.freeOSMemory = debug.FreeOSMemory
	}
	switch {
	case c.MaxQueue == 0:
		c.MaxQueue = DefaultMaxQueue
	case c.MaxQueue < 0:
		c.MaxQueue = 0
	}
	return c, nil
}
