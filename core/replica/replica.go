// Package replica is the registry of the toolgate replicas that share one
// store: every running server keeps a heartbeat record in the store (who it
// is, where it answers, since when, and which plugin set it serves), and
// anyone with the store — the operator through the admin endpoint above
// all — can list the live replicas and see whether their plugin sets
// agree.
//
// Records live in the store's PluginKV under store.SystemNamespace, a
// namespace no plugin can name, at "replica/<id>", as JSON. Each heartbeat
// rewrites the record with a TTL of a few heartbeat intervals, so a replica
// that dies without saying goodbye (SIGKILL, a lost machine) disappears
// from the listing by itself; a replica that stops cleanly deletes its
// record at once. On Badger the registry holds the one replica; on a
// shared PostgreSQL store it holds all of them.
//
// The package imports only the standard library and core/store: it knows
// nothing about plugins beyond the summary the composition root hands it.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/toolgate/toolgate/core/store"
)

// keyPrefix is the prefix of every replica record's key in
// store.SystemNamespace.
const keyPrefix = "replica/"

// Defaults of Config.
const (
	// DefaultInterval is how often a replica rewrites its record.
	DefaultInterval = 10 * time.Second
	// TTLIntervals is how many heartbeat intervals a record outlives its
	// last heartbeat by default: a replica missing that many heartbeats in
	// a row is gone from the listing.
	TTLIntervals = 3
	// writeTimeout bounds one heartbeat write and the goodbye delete.
	writeTimeout = 5 * time.Second
)

// Plugin is one loaded plugin as the registry shows it.
type Plugin struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// SHA256 is the hex SHA-256 of the plugin's .wasm file.
	SHA256 string `json:"sha256"`
	// Tools are the plugin's tool names, sorted.
	Tools []string `json:"tools"`
}

// Info is one replica's record.
type Info struct {
	// ID names the replica (server.replica_id, or host name and listen
	// port); unique among the replicas sharing a store.
	ID string `json:"id"`
	// URL is the replica's server.public_url (the same for every replica
	// behind one load balancer).
	URL string `json:"url"`
	// Addr is the address the replica listens on.
	Addr string `json:"addr,omitempty"`
	// Version is the toolgate version the replica runs.
	Version   string    `json:"version,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// LastSeen is the time of the replica's latest heartbeat.
	LastSeen time.Time `json:"last_seen"`
	// PluginDigest identifies the plugin set the replica serves; replicas
	// serving the same plugins with the same access rules have the same
	// digest. Empty while no plugin set is loaded.
	PluginDigest string `json:"plugin_digest"`
	// Plugins are the loaded plugins, sorted by name.
	Plugins []Plugin `json:"plugins"`
}

// ErrInvalidID is returned (wrapped) by New for a replica ID the store
// cannot use as a key.
var ErrInvalidID = errors.New("replica: invalid replica id")

// Config configures a Registry.
type Config struct {
	// Store holds the records. Required.
	Store store.PluginKV
	// Self is this replica's record; ID is required, LastSeen and the
	// plugin fields are maintained by the Registry.
	Self Info
	// Interval is the time between heartbeats. Default DefaultInterval.
	Interval time.Duration
	// TTL is how long a record outlives its last heartbeat. Default
	// TTLIntervals × Interval; it must exceed Interval.
	TTL time.Duration
	// Logger receives failed heartbeats. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Registry keeps this replica's record fresh. Its methods are safe for
// concurrent use.
type Registry struct {
	cfg  Config
	kick chan struct{} // a pending "write now" for Run

	mu   sync.Mutex
	self Info
}

// New validates cfg and returns a Registry; nothing is written until Beat
// or Run.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("replica: a store is required")
	}
	if cfg.Self.ID == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if err := store.ValidatePluginKey(store.SystemNamespace, keyPrefix+cfg.Self.ID); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidID, cfg.Self.ID, err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.TTL == 0 {
		cfg.TTL = TTLIntervals * cfg.Interval
	}
	if cfg.TTL <= cfg.Interval {
		return nil, fmt.Errorf("replica: ttl %s must exceed the heartbeat interval %s", cfg.TTL, cfg.Interval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	self := cfg.Self
	self.Plugins = clonePlugins(self.Plugins)
	return &Registry{cfg: cfg, self: self, kick: make(chan struct{}, 1)}, nil
}

// ID is this replica's ID.
func (r *Registry) ID() string { return r.cfg.Self.ID }

// Self returns this replica's record as the next heartbeat writes it.
func (r *Registry) Self() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.self
	s.Plugins = clonePlugins(s.Plugins)
	return s
}

// SetPlugins records the plugin set this replica now serves; a running Run
// writes it at once instead of at the next heartbeat.
func (r *Registry) SetPlugins(digest string, plugins []Plugin) {
	r.mu.Lock()
	r.self.PluginDigest = digest
	r.self.Plugins = clonePlugins(plugins)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // a write is already pending
	}
}

// Beat writes this replica's record now, with LastSeen set to the present.
func (r *Registry) Beat(ctx context.Context) error {
	r.mu.Lock()
	r.self.LastSeen = r.cfg.Now().UTC()
	rec := r.self
	r.mu.Unlock()
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("replica: encode the record: %w", err)
	}
	if err := r.cfg.Store.KVPut(ctx, store.SystemNamespace, keyPrefix+rec.ID, b, r.cfg.TTL); err != nil {
		return fmt.Errorf("replica: write the heartbeat of %s: %w", rec.ID, err)
	}
	return nil
}

// Leave deletes this replica's record, so listings drop it at once.
func (r *Registry) Leave(ctx context.Context) error {
	if err := r.cfg.Store.KVDelete(ctx, store.SystemNamespace, keyPrefix+r.cfg.Self.ID); err != nil {
		return fmt.Errorf("replica: delete the record of %s: %w", r.cfg.Self.ID, err)
	}
	return nil
}

// Run writes a heartbeat at once, then every Interval and whenever
// SetPlugins changed the record, until ctx ends; then it deletes the
// record (Leave) and returns. A failed write is logged and retried at the
// next heartbeat: the record only expires if TTL passes without one
// succeeding.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		if err := r.Beat(bctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("replica heartbeat failed; retrying at the next one", "replica", r.cfg.Self.ID, "err", err)
		}
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
			defer cancel()
			if err := r.Leave(lctx); err != nil {
				r.cfg.Logger.Warn("replica record not deleted; it expires by itself", "replica", r.cfg.Self.ID, "ttl", r.cfg.TTL.String(), "err", err)
			}
			return
		case <-t.C:
			beat()
		case <-r.kick:
			beat()
		}
	}
}

// List returns the live replicas recorded in kv, sorted by ID. A record
// that cannot be decoded is skipped and reported in the error, which then
// comes with the non-nil list of the others; a failing store returns a nil
// list.
func List(ctx context.Context, kv store.PluginKV) ([]Info, error) {
	var (
		out   = []Info{}
		errs  []error
		after string
	)
	const page = 500
	for {
		keys, err := kv.KVList(ctx, store.SystemNamespace, keyPrefix, after, page)
		if err != nil {
			return nil, fmt.Errorf("replica: list the records: %w", err)
		}
		for _, k := range keys {
			b, err := kv.KVGet(ctx, store.SystemNamespace, k)
			if errors.Is(err, store.ErrNotFound) {
				continue // expired or deleted since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("replica: read %s: %w", k, err)
			}
			var in Info
			if err := json.Unmarshal(b, &in); err != nil {
				errs = append(errs, fmt.Errorf("replica: decode %s: %w", k, err))
				continue
			}
			out = append(out, in)
		}
		if len(keys) < page {
			break
		}
		after = keys[len(keys)-1]
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, errors.Join(errs...)
}

// Digests returns the distinct plugin digests of rs, most common first
// (ties in lexical order), with how many replicas serve each. One entry
// means the replicas agree.
func Digests(rs []Info) []DigestCount {
	counts := map[string]int{}
	for _, r := range rs {
		counts[r.PluginDigest]++
	}
	out := make([]DigestCount, 0, len(counts))
	for d, n := range counts {
		out = append(out, DigestCount{Digest: d, Replicas: n})
	}
	slices.SortFunc(out, func(a, b DigestCount) int {
		if a.Replicas != b.Replicas {
			return b.Replicas - a.Replicas
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return out
}

// DigestCount is one plugin digest and how many replicas serve it.
type DigestCount struct {
	Digest   string `json:"digest"`
	Replicas int    `json:"replicas"`
}

func clonePlugins(ps []Plugin) []Plugin {
	if ps == nil {
		return []Plugin{}
	}
	out := make([]Plugin, len(ps))
	for i, p := range ps {
		p.Tools = slices.Clone(p.Tools)
		out[i] = p
	}
	return out
}
