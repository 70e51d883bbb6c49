package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/tetratelabs/wazero"

	"github.com/toolgate/toolgate/sdk/abi"
)

// Host loads plugins and runs their tool calls. It is safe for concurrent
// use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	cache   wazero.CompilationCache
	metrics *metrics

	cur      atomic.Pointer[pluginSet]
	gen      atomic.Uint64
	reloadMu sync.Mutex
	closed   atomic.Bool

	subsMu  sync.Mutex
	subs    map[int]func(Event)
	nextSub int

	watcher   *fsnotify.Watcher
	stopWatch chan struct{}
	watchDone chan struct{}

	// stopReaper and reaperDone run the idle loop: the idle-instance
	// reaper and the idle memory release (see idleLoop).
	stopReaper chan struct{}
	reaperDone chan struct{}
	// calls counts finished calls; the idle loop compares it between its
	// ticks to see the host go quiet.
	calls atomic.Uint64
}

// now is the host's clock for idle times.
func (h *Host) now() time.Time { return h.cfg.now() }

// Event tells subscribers about a reload.
type Event struct {
	// Snapshot is the set now serving: the new one, or the old one when the
	// reload failed.
	Snapshot Snapshot
	// Err is why the reload failed, or nil when the set changed.
	Err error
}

// Snapshot describes one plugin set. It is a copy: callers may keep it.
type Snapshot struct {
	// Generation increases with every set that replaced another.
	Generation uint64
	// Plugins, sorted by name.
	Plugins []PluginInfo
	// Tools, sorted by name.
	Tools []Tool
}

// Tool returns the tool with the given name.
func (s Snapshot) Tool(name string) (Tool, bool) {
	i := sort.Search(len(s.Tools), func(i int) bool { return s.Tools[i].Name >= name })
	if i < len(s.Tools) && s.Tools[i].Name == name {
		return s.Tools[i], true
	}
	return Tool{}, false
}

// PluginInfo describes one loaded plugin.
type PluginInfo struct {
	Name      string
	File      string
	SHA256    string
	Manifest  abi.Manifest
	Isolation Isolation
	PoolSize  int
	Limits    Limits
}

// Tool is one served tool with its effective rules and limits.
type Tool struct {
	Name   string
	Plugin string
	// Spec is the tool as the plugin's manifest declares it.
	Spec abi.Tool
	// Rules are the access rules the gate enforces.
	Rules Rules
	// Limits apply to each call of the tool.
	Limits Limits
}

// Rules say who may see and call a tool. Every non-empty rule must hold.
type Rules struct {
	// Permissions the caller must all hold: plugins.toml's permissions for
	// the tool when set there, else the manifest's.
	Permissions []string
	// AnyPermissions: the caller must hold at least one of them.
	AnyPermissions []string
	// Roles: the caller's role must be one of them.
	Roles []string
	// Organizations: the caller's organization ID must be one of them.
	Organizations []string
}

// Limits are the limits of one tool call.
type Limits struct {
	Memory    int64         // bytes of linear memory
	Timeout   time.Duration // wall time
	MaxOutput int64         // bytes of CallResult JSON
}

// CallOptions are per-call options of Host.Call.
type CallOptions struct {
	// CallID identifies the call in logs on both sides.
	CallID string
	// Progress, if set, receives the plugin's progress reports. It runs on
	// the calling goroutine of the plugin and must not block.
	Progress func(Progress)
	// Tools, if set, answers the plugin's FuncTools host call: every tool
	// on the server as this call's caller sees it. The gate sets it; a
	// plugin granted "tools" gets an empty list when it is nil.
	Tools func() []abi.ToolAccess
}

// pluginSet is one immutable set of loaded plugins, reference counted by
// the calls running on it.
type pluginSet struct {
	snapshot Snapshot
	plugins  []*loadedPlugin
	tools    map[string]*loadedPlugin

	mu      sync.Mutex
	refs    int
	retired bool
	done    chan struct{} // closed once retired and drained and closed
}

func newSet(gen uint64, plugins []*loadedPlugin) (*pluginSet, error) {
	s := &pluginSet{plugins: plugins, tools: make(map[string]*loadedPlugin), done: make(chan struct{})}
	s.snapshot.Generation = gen
	for _, p := range plugins {
		s.snapshot.Plugins = append(s.snapshot.Plugins, PluginInfo{
			Name: p.src.name, File: p.src.file, SHA256: p.sha256, Manifest: p.manifest,
			Isolation: p.isolation, PoolSize: p.poolSize, Limits: p.limits.export(),
		})
		for _, t := range p.manifest.Tools {
			if other, dup := s.tools[t.Name]; dup {
				return nil, fmt.Errorf("tool %q is served by two plugins: %q (%s) and %q (%s); remove one or rename the tool",
					t.Name, other.src.name, other.src.file, p.src.name, p.src.file)
			}
			s.tools[t.Name] = p
			rules := Rules{Permissions: t.Permissions}
			if te, ok := p.src.entry.Tools[t.Name]; ok {
				if te.Permissions != nil {
					rules.Permissions = *te.Permissions
				}
				rules.AnyPermissions = te.AnyPermissions
				rules.Roles = te.Roles
				rules.Organizations = te.Organizations
			}
			s.snapshot.Tools = append(s.snapshot.Tools, Tool{
				Name: t.Name, Plugin: p.src.name, Spec: t, Rules: rules, Limits: p.tools[t.Name].export(),
			})
		}
	}
	sort.Slice(s.snapshot.Tools, func(i, j int) bool { return s.snapshot.Tools[i].Name < s.snapshot.Tools[j].Name })
	return s, nil
}

func (l limits) export() Limits {
	return Limits{Memory: l.memory, Timeout: l.timeout, MaxOutput: l.maxOutput}
}

// acquire takes a reference; it fails once the set is retired.
func (s *pluginSet) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false
	}
	s.refs++
	return true
}

func (s *pluginSet) release(ctx context.Context) {
	s.mu.Lock()
	s.refs--
	last := s.retired && s.refs == 0
	s.mu.Unlock()
	if last {
		s.close(ctx)
	}
}

// retire marks the set replaced; it closes when its last call returns.
func (s *pluginSet) retire(ctx context.Context) {
	s.mu.Lock()
	s.retired = true
	last := s.refs == 0
	s.mu.Unlock()
	if last {
		s.close(ctx)
	}
}

func (s *pluginSet) close(ctx context.Context) {
	for _, p := range s.plugins {
		p.close(context.WithoutCancel(ctx))
	}
	close(s.done)
}

// New creates a host and loads the initial plugin set; any plugin that
// fails to load fails New. With cfg.Watch it also starts watching the
// drop-in folder.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register plugin metrics: %w", err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("open compilation cache: %w", err)
	}
	h := &Host{cfg: cfg, log: cfg.Logger, cache: cache, metrics: m, subs: make(map[int]func(Event))}
	if err := h.Reload(ctx); err != nil {
		_ = cache.Close(ctx)
		return nil, err
	}
	h.startReaper(cfg.IdleInstanceTTL)
	if cfg.Watch {
		if err := h.startWatch(); err != nil {
			_ = h.Close(ctx)
			return nil, err
		}
	}
	return h, nil
}

// Reload rebuilds the plugin set from plugins.toml and the drop-in folder
// (for SIGHUP). The new set is loaded completely, plugins in parallel, then
// swapped in atomically; calls in flight finish on the old set, which is
// closed after them. On error the old set keeps serving, the reason is
// logged and subscribers are told.
func (h *Host) Reload(ctx context.Context) error {
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if h.closed.Load() {
		return errors.New("plugin host is closed")
	}
	err := h.reload(ctx)
	if err != nil {
		h.log.Error("plugin reload failed; the previous plugin set keeps serving", "err", err)
		if old := h.cur.Load(); old != nil {
			h.notify(Event{Snapshot: old.snapshot, Err: err})
		}
	}
	return err
}

func (h *Host) reload(ctx context.Context) error {
	pf := h.cfg.Plugins
	if pf == nil {
		pf = &PluginsFile{DropIn: DropInAllow, Name: "plugins.toml", Dir: "."}
		if h.cfg.PluginsFile != "" {
			read, err := ReadPluginsFile(h.cfg.PluginsFile)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				// A missing file is an empty one: every plugin in the
				// drop-in folder loads, with no grants. Creating the file
				// and reloading (SIGHUP) brings its entries in.
				h.log.Info("no plugins file; loading the drop-in folder without grants", "file", h.cfg.PluginsFile, "dir", h.cfg.DropInDir)
			case err != nil:
				return err
			default:
				pf = read
			}
		}
	}
	srcs, err := h.sources(pf)
	if err != nil {
		return err
	}
	loaded := make([]*loadedPlugin, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Go(func() {
			p, err := h.load(ctx, src)
			if err != nil {
				errs[i] = fmt.Errorf("plugin %q (%s): %w", src.name, src.file, err)
				return
			}
			loaded[i] = p
		})
	}
	wg.Wait()
	closeAll := func() {
		for _, p := range loaded {
			if p != nil {
				p.close(context.WithoutCancel(ctx))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		closeAll()
		return err
	}
	set, err := newSet(h.gen.Add(1), loaded)
	if err != nil {
		closeAll()
		return err
	}
	old := h.cur.Swap(set)
	if old != nil {
		old.retire(ctx)
	}
	h.log.Info("plugin set ready", "generation", set.snapshot.Generation, "plugins", len(set.plugins), "tools", len(set.snapshot.Tools))
	h.notify(Event{Snapshot: set.snapshot})
	if !h.cfg.Interpreter && len(set.plugins) > 0 {
		// Loading leaves the loader's garbage in the heap: hundreds of
		// MiB after a cold compile, some 40 MiB even from the cache
		// (reading and validating the cached native code). The Go
		// runtime returns freed pages to the OS only gradually (the
		// scavenger paces itself over minutes), so the server's RSS would
		// sit well above its working set long after loading. One forced
		// collection and scavenge, here in the reloading goroutine after
		// the new set serves, returns it at once; reloads are rare, so
		// its cost (one full GC) does not matter.
		h.releaseMemory("plugins loaded")
	}
	return nil
}

// releaseMemory runs one garbage collection and returns the freed pages to
// the OS (debug.FreeOSMemory), and logs what it took. It blocks its caller
// for the collection (milliseconds to tens of milliseconds, growing with
// the live heap) while other goroutines keep running: call it from a
// background goroutine, never on a call's path.
func (h *Host) releaseMemory(why string) {
	start := time.Now()
	h.cfg.freeOSMemory()
	h.metrics.releases.Inc()
	h.log.Debug("returned freed memory to the OS", "after", why, "took", time.Since(start).Round(time.Microsecond).String())
}

// idleReleaseTick is the longest interval between two ticks of the idle
// loop, so that memory goes back to the OS between one and two of them
// after the last call.
const idleReleaseTick = 5 * time.Second

// idleTick is the interval of the idle loop for an IdleInstanceTTL of ttl
// (negative: no shrinking).
func idleTick(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return idleReleaseTick
	}
	return max(min(ttl/2, idleReleaseTick), time.Millisecond)
}

// startReaper starts the idle loop (see idleLoop); Close stops it.
func (h *Host) startReaper(ttl time.Duration) {
	h.stopReaper = make(chan struct{})
	h.reaperDone = make(chan struct{})
	go func() {
		defer close(h.reaperDone)
		t := time.NewTicker(idleTick(ttl))
		defer t.Stop()
		var l idleLoop
		for {
			select {
			case <-h.stopReaper:
				return
			case <-t.C:
				l.tick(h, ttl)
			}
		}
	}()
}

// idleLoop is the state of the host's idle loop. On every tick it closes
// the warm instances beyond each plugin's first that have idled for longer
// than IdleInstanceTTL (when positive), and it returns freed memory to the
// OS once per quiet spell: when no call finished since the previous tick
// but some did since the last release, or when instances were just closed.
//
// Why: a call leaves garbage in the Go heap (its JSON, a rendered image,
// the go-sdk's buffers), and closed instances leave their linear memory
// there. With the heap's live part at some 50 MiB, the Go runtime
// collects again only once the heap has doubled, and it hands free pages
// back over minutes, so a server that has gone quiet would keep tens of
// MiB it does not use. One collection and scavenge per quiet spell costs
// one full GC (measured in bench/results) on this goroutine while nothing
// is running.
type idleLoop struct {
	seen     uint64 // h.calls at the previous tick
	released uint64 // h.calls at the last release
}

func (l *idleLoop) tick(h *Host, ttl time.Duration) {
	closed := 0
	if ttl > 0 {
		closed = h.reapIdle(ttl)
	}
	n := h.calls.Load()
	quiet := n == l.seen
	l.seen = n
	why := ""
	switch {
	case closed > 0:
		why = "closing idle instances"
	case quiet && n != l.released:
		why = "calls stopped"
	default:
		return
	}
	h.recycleGrown()
	h.releaseMemory(why)
	l.released = n
}

// recycleGrown replaces the grown idle instances of every plugin of the
// serving set (see loadedPlugin.recycleGrown).
func (h *Host) recycleGrown() {
	s := h.acquireSet()
	if s == nil {
		return
	}
	defer s.release(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, p := range s.plugins {
		if p.isolation == IsolationPooled {
			p.recycleGrown(ctx)
		}
	}
}

// reapIdle shrinks the pool of every plugin of the serving set and returns
// how many instances it closed.
func (h *Host) reapIdle(ttl time.Duration) int {
	s := h.acquireSet()
	if s == nil {
		return 0
	}
	defer s.release(context.Background())
	now := h.now()
	closed := 0
	for _, p := range s.plugins {
		if p.isolation == IsolationPooled {
			closed += p.shrinkIdle(now, ttl)
		}
	}
	return closed
}

// Subscribe calls fn after every reload, successful or not, until the
// returned function is called. fn runs on the reloading goroutine, with the
// reload lock held: it must not block for long and must not call Reload.
func (h *Host) Subscribe(fn func(Event)) (unsubscribe func()) {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	id := h.nextSub
	h.nextSub++
	h.subs[id] = fn
	return func() {
		h.subsMu.Lock()
		defer h.subsMu.Unlock()
		delete(h.subs, id)
	}
}

func (h *Host) notify(ev Event) {
	h.subsMu.Lock()
	fns := make([]func(Event), 0, len(h.subs))
	for _, fn := range h.subs {
		fns = append(fns, fn)
	}
	h.subsMu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// Tools returns the current plugin set.
func (h *Host) Tools() Snapshot {
	if s := h.cur.Load(); s != nil {
		return s.snapshot
	}
	return Snapshot{}
}

// Ready reports whether the host has a plugin set and is not closed.
func (h *Host) Ready() bool {
	return !h.closed.Load() && h.cur.Load() != nil
}

// acquireSet returns the current set with a reference held.
func (h *Host) acquireSet() *pluginSet {
	for {
		s := h.cur.Load()
		if s == nil || h.closed.Load() {
			return nil
		}
		if s.acquire() {
			return s
		}
		// The set was retired between Load and acquire; the new one is
		// already in place.
	}
}

// Call runs one tool call. ctx bounds it (cancelling ctx cancels the
// running guest); the plugin's limits apply on top. A plugin failure is
// returned as *Error; result.IsError is the guest's own tool error and is
// not a Go error.
func (h *Host) Call(ctx context.Context, toolName string, args json.RawMessage, caller abi.Caller, opts CallOptions) (abi.CallResult, error) {
	set := h.acquireSet()
	if set == nil {
		return abi.CallResult{}, &Error{Kind: ErrKindUnavailable, Tool: toolName, Message: "the plugin host is closed"}
	}
	defer set.release(ctx)
	p, ok := set.tools[toolName]
	if !ok {
		return abi.CallResult{}, &Error{Kind: ErrKindUnknownTool, Tool: toolName, Message: "no loaded plugin serves this tool"}
	}
	start := time.Now()
	res, err := h.call(ctx, p, toolName, args, caller, opts)
	h.calls.Add(1)
	h.metrics.calls.WithLabelValues(p.src.name, toolName).Inc()
	h.metrics.duration.WithLabelValues(p.src.name, toolName).Observe(time.Since(start).Seconds())
	if err != nil {
		kind := KindOf(err)
		h.metrics.errors.WithLabelValues(p.src.name, toolName, string(kind)).Inc()
		switch kind {
		case ErrKindGuest, ErrKindCancelled:
		case ErrKindBusy:
			// Counted above; a flood of calls must not become a flood of
			// warnings.
			p.log.Debug("plugin busy", "tool", toolName, "call_id", opts.CallID)
		default:
			p.log.Warn("plugin call failed", "tool", toolName, "call_id", opts.CallID, "kind", kind, "err", err)
		}
	}
	return res, err
}

func (h *Host) call(ctx context.Context, p *loadedPlugin, toolName string, args json.RawMessage, caller abi.Caller, opts CallOptions) (abi.CallResult, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	if caller.Permissions == nil {
		caller.Permissions = []string{}
	}
	input, err := json.Marshal(abi.CallInput{Tool: toolName, Arguments: args, Caller: caller, CallID: opts.CallID})
	if err != nil {
		return abi.CallResult{}, &Error{Kind: ErrKindBadInput, Plugin: p.src.name, Tool: toolName, Message: "the arguments are not valid JSON", Err: err}
	}
	if len(input) > abi.MaxInputBytes {
		return abi.CallResult{}, &Error{Kind: ErrKindInputTooLarge, Plugin: p.src.name, Tool: toolName,
			Message: fmt.Sprintf("the call input is %d bytes, over the %d byte limit", len(input), abi.MaxInputBytes)}
	}
	return p.run(ctx, toolName, input, opts)
}

// Close stops the watcher, waits until calls in flight finish and closes
// every plugin and the compilation cache handle. If ctx ends first, Close
// returns an error and the rest is closed when the last call returns.
func (h *Host) Close(ctx context.Context) error {
	if h.closed.Swap(true) {
		return nil
	}
	if h.stopReaper != nil {
		close(h.stopReaper)
		<-h.reaperDone
	}
	if h.watcher != nil {
		close(h.stopWatch)
		<-h.watchDone
	}
	h.reloadMu.Lock()
	defer h.reloadMu.Unlock()
	if s := h.cur.Swap(nil); s != nil {
		s.retire(ctx)
		select {
		case <-s.done:
		case <-ctx.Done():
			// The set closes when its last call returns; the cache after it.
			go func() {
				<-s.done
				_ = h.cache.Close(context.WithoutCancel(ctx))
			}()
			return fmt.Errorf("close plugin host: calls still running: %w", ctx.Err())
		}
	}
	if err := h.cache.Close(ctx); err != nil {
		return fmt.Errorf("close compilation cache: %w", err)
	}
	return nil
}
