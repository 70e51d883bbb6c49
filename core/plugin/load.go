package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/toolgate/toolgate/sdk/abi"
)

const wasmPageSize = 1 << 16

// limits are the effective limits of one tool call.
type limits struct {
	memory    int64
	timeout   time.Duration
	maxOutput int64
}

// source is one plugin to load: its name, file and plugins.toml entry.
type source struct {
	name  string
	file  string
	entry PluginEntry
}

// loadedPlugin is one compiled, validated plugin with its own wazero
// runtime (plugins never share a runtime, so they cannot import each
// other's modules) and its instance pool.
type loadedPlugin struct {
	h        *Host
	src      source
	sha256   string
	manifest abi.Manifest
	log      *slog.Logger

	rt        wazero.Runtime
	cm        wazero.CompiledModule
	hasInit   bool
	isolation Isolation
	poolSize  int
	limits    limits
	// recycleAbove is the linear-memory size above which an instance is
	// closed after its call instead of going back to the pool.
	recycleAbove uint32
	// freshMemory is the linear-memory size of a fresh instance, measured
	// on the first one; an idle instance grown past twice it is replaced
	// when the host goes quiet (see recycleGrown).
	freshMemory uint32
	tools       map[string]limits
	// grants are set once the manifest is validated, before any call.
	grants     grants
	httpClient *http.Client

	sem chan struct{} // one token per concurrent call
	// idle is the pool of warm instances, a stack ordered by idleSince
	// (newest last), at most poolSize long; idleClosed refuses new ones
	// once the plugin is closing.
	idleMu     sync.Mutex
	idle       []*instance
	idleClosed bool
	// waiting counts calls waiting for a slot in sem, at most maxQueue.
	waiting      atomic.Int64
	maxQueue     int
	queueTimeout time.Duration

	// bg tracks replacement instances being started; closing stops new ones.
	bgMu      sync.Mutex
	bg        sync.WaitGroup
	closing   bool
	closeOnce sync.Once
}

// requiredExports are the guest exports and their signatures.
var requiredExports = []struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	sig     string
}{
	{abi.ExportABIVersion, nil, []api.ValueType{api.ValueTypeI32}, "() -> i32"},
	{abi.ExportAlloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}, "(i32) -> i32"},
	{abi.ExportManifest, nil, []api.ValueType{api.ValueTypeI64}, "() -> i64"},
	{abi.ExportCall, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}, "(i32, i32) -> i64"},
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkExports reports the first missing or mistyped guest export.
func checkExports(cm wazero.CompiledModule) error {
	exports := cm.ExportedFunctions()
	for _, want := range requiredExports {
		def, ok := exports[want.name]
		if !ok {
			return fmt.Errorf("missing export %q %s; is it a reactor built with -buildmode=c-shared against ABI version %d?", want.name, want.sig, abi.Version)
		}
		if !sameTypes(def.ParamTypes(), want.params) || !sameTypes(def.ResultTypes(), want.results) {
			return fmt.Errorf("export %q has the wrong signature; want %s", want.name, want.sig)
		}
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch mod {
		case abi.HostModule, wasi_snapshot_preview1.ModuleName:
		default:
			return fmt.Errorf("imports %s.%s from an unknown module; only %q and %q exist", mod, name, abi.HostModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	return nil
}

// readSource reads the file and checks its sha256 pin.
func readSource(src source) ([]byte, string, error) {
	wasm, err := os.ReadFile(src.file)
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	if src.entry.SHA256 != "" && src.entry.SHA256 != digest {
		return nil, "", fmt.Errorf("sha256 is %s, but plugins.toml pins %s", digest, src.entry.SHA256)
	}
	return wasm, digest, nil
}

// load reads, verifies, compiles and instantiates one plugin, validates its
// manifest and grants, and keeps the first instance warm in its pool.
func (h *Host) load(ctx context.Context, src source) (_ *loadedPlugin, err error) {
	start := time.Now()
	wasm, digest, err := readSource(src)
	if err != nil {
		return nil, err
	}
	e := src.entry
	p := &loadedPlugin{
		h:         h,
		src:       src,
		sha256:    digest,
		log:       h.log.With("plugin", src.name),
		isolation: e.Isolation,
		poolSize:  e.PoolSize,
		limits: limits{
			memory:    int64(e.Memory),
			timeout:   time.Duration(e.Timeout),
			maxOutput: int64(e.MaxOutput),
		},
		tools: make(map[string]limits),
	}
	if p.isolation == "" {
		p.isolation = IsolationPooled
	}
	if p.poolSize == 0 {
		p.poolSize = h.cfg.PoolSize
	}
	p.maxQueue, p.queueTimeout = h.cfg.MaxQueue, h.cfg.QueueTimeout
	if p.limits.memory == 0 {
		p.limits.memory = DefaultMemory
	}
	if p.limits.timeout == 0 {
		p.limits.timeout = DefaultTimeout
	}
	if p.limits.maxOutput == 0 {
		p.limits.maxOutput = DefaultMaxOutput
	}
	// The runtime's memory cap is the largest any tool of the plugin may
	// use; smaller per-tool caps are checked after each call.
	runtimeMem := p.limits.memory
	for _, t := range e.Tools {
		runtimeMem = max(runtimeMem, int64(t.Memory))
	}
	p.recycleAbove = uint32(p.limits.memory / 2)
	if e.KV && h.cfg.KV == nil {
		return nil, errors.New("plugins.toml grants kv, but the host has no key/value store")
	}

	defer func() {
		if err != nil {
			p.close(context.WithoutCancel(ctx))
		}
	}()
	inst, err := p.bootstrap(ctx, wasm, runtimeMem)
	if err != nil {
		return nil, err
	}
	p.freshMemory = inst.memSize
	keep := false
	defer func() {
		if !keep {
			p.discard(ctx, inst)
		}
	}()
	if err := inst.checkVersion(ctx); err != nil {
		return nil, err
	}
	raw, err := inst.readManifest(ctx)
	if err != nil {
		return nil, err
	}
	if p.manifest, err = decodeManifest(raw); err != nil {
		return nil, err
	}
	if p.manifest.Name != src.name {
		// The operator's name (entry or file name) is the plugin's identity:
		// it scopes grants, metrics and the kv namespace.
		p.log.Warn("the manifest names the plugin differently; using the name from plugins.toml or the file name",
			"manifest_name", p.manifest.Name, "file", src.file)
	}
	if err := checkGrants(src.name, src.file, h.pluginsFileName(), p.manifest, e); err != nil {
		return nil, err
	}
	p.grants = effectiveGrants(p.manifest, e)
	if len(p.grants.http) > 0 {
		p.httpClient = newHTTPClient(p.grants.http, e.AllowPrivateHosts)
	}
	known := make(map[string]bool, len(p.manifest.Tools))
	for _, t := range p.manifest.Tools {
		known[t.Name] = true
		l := p.limits
		if te, ok := e.Tools[t.Name]; ok {
			if te.Timeout != 0 {
				l.timeout = time.Duration(te.Timeout)
			}
			if te.Memory != 0 {
				l.memory = int64(te.Memory)
			}
			if te.MaxOutput != 0 {
				l.maxOutput = int64(te.MaxOutput)
			}
		}
		p.tools[t.Name] = l
	}
	for tn := range e.Tools {
		if !known[tn] {
			return nil, fmt.Errorf("plugins.toml has [plugins.%s.tools.%s], but the plugin has no tool %q", src.name, tn, tn)
		}
	}
	p.sem = make(chan struct{}, p.poolSize)
	if p.isolation == IsolationPooled {
		keep = p.putIdle(inst)
	}
	h.metrics.load.WithLabelValues(src.name).Observe(time.Since(start).Seconds())
	p.log.Info("plugin loaded", "file", src.file, "version", p.manifest.Version, "sha256", digest,
		"tools", len(p.manifest.Tools), "load_time", time.Since(start).Round(time.Millisecond).String())
	return p, nil
}

// bootstrap creates the plugin's runtime with WASI and the host functions,
// merges the module's data segments (see mergeDataSegments), compiles it
// (through the compilation cache), checks its exports and returns a first
// instance.
func (p *loadedPlugin) bootstrap(ctx context.Context, wasm []byte, runtimeMem int64) (*instance, error) {
	h := p.h
	var rcfg wazero.RuntimeConfig
	if h.cfg.Interpreter {
		rcfg = wazero.NewRuntimeConfigInterpreter()
	} else {
		rcfg = wazero.NewRuntimeConfig()
	}
	rcfg = rcfg.WithCompilationCache(h.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(uint32((runtimeMem + wasmPageSize - 1) / wasmPageSize))
	if h.cache == nil {
		rcfg = rcfg.WithCompilationCache(wazero.NewCompilationCache())
	}
	p.rt = wazero.NewRuntimeWithConfig(ctx, rcfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return nil, fmt.Errorf("instantiate wasi: %w", err)
	}
	if err := p.instantiateHostModule(ctx); err != nil {
		return nil, fmt.Errorf("instantiate host functions: %w", err)
	}
	if merged, err := mergeDataSegments(wasm); err == nil {
		wasm = merged
	}
	cstart := time.Now()
	cctx := experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0))
	var err error
	p.cm, err = p.rt.CompileModule(cctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	h.metrics.compile.WithLabelValues(p.src.name).Observe(time.Since(cstart).Seconds())
	if err := checkExports(p.cm); err != nil {
		return nil, err
	}
	_, p.hasInit = p.cm.ExportedFunctions()[abi.ExportInitialize]
	return p.newInstance(ctx)
}

// close closes every idle instance and the runtime. It must only run when
// no call is in flight.
func (p *loadedPlugin) close(ctx context.Context) {
	p.closeOnce.Do(func() {
		p.bgMu.Lock()
		p.closing = true
		p.bgMu.Unlock()
		p.bg.Wait()
		p.idleMu.Lock()
		idle := p.idle
		p.idle, p.idleClosed = nil, true
		p.idleMu.Unlock()
		for _, inst := range idle {
			p.discard(ctx, inst)
		}
		if p.rt != nil {
			if err := p.rt.Close(ctx); err != nil {
				p.log.Warn("closing plugin runtime", "err", err)
			}
		}
		// The compiled module is held by the host's compilation cache,
		// which every runtime shares and which keeps it (the decoded
		// module and its native code) until it is closed; closing the
		// runtime does not. Without this every build of a plugin ever
		// loaded stayed in memory. A newer set running the same build
		// keeps it through the cache's reference count.
		if p.cm != nil {
			_ = p.cm.Close(ctx)
		}
	})
}

// pluginsFileName names plugins.toml in messages.
func (h *Host) pluginsFileName() string {
	if h.cfg.PluginsFile != "" {
		return h.cfg.PluginsFile
	}
	if h.cfg.Plugins != nil && h.cfg.Plugins.Name != "" {
		return h.cfg.Plugins.Name
	}
	return "plugins.toml"
}

// sources lists the plugins to load: every plugins.toml entry, plus the
// drop-in folder's .wasm files without an entry when the policy allows.
func (h *Host) sources(pf *PluginsFile) ([]source, error) {
	var out []source
	for name, e := range pf.Plugins {
		file := e.Path
		switch {
		case file == "":
			file = filepath.Join(h.cfg.DropInDir, name+".wasm")
		case !filepath.IsAbs(file):
			file = filepath.Join(pf.Dir, file)
		}
		out = append(out, source{name: name, file: file, entry: e})
	}
	ents, err := os.ReadDir(h.cfg.DropInDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read drop-in folder: %w", err)
	}
	for _, de := range ents {
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".wasm") {
			continue
		}
		name := strings.TrimSuffix(de.Name(), ".wasm")
		file := filepath.Join(h.cfg.DropInDir, de.Name())
		if e, ok := pf.Plugins[name]; ok {
			if e.Path != "" {
				h.log.Warn("drop-in file ignored: plugins.toml gives this plugin an explicit path", "file", file, "plugin", name)
			}
			continue
		}
		if pf.DropIn == DropInDeny {
			h.log.Info("drop-in file ignored: drop_in = \"deny\" and plugins.toml has no entry for it", "file", file)
			continue
		}
		if !pluginNameRE.MatchString(name) {
			return nil, fmt.Errorf("drop-in file %s: the plugin name %q (the file name without .wasm) must be 1-64 characters of a-z, 0-9, '_' and '-'", file, name)
		}
		out = append(out, source{name: name, file: file})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}
