package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// registry is the plugin this module declares. A WebAssembly module is one
// plugin, so the registry is process-wide; Plugin and Tool fill it from
// init functions and the exports read it.
var registry struct {
	mu       sync.Mutex
	declared bool
	manifest abi.Manifest
	tools    map[string]*tool

	once         sync.Once
	manifestJSON []byte
	manifestErr  error
}

// tool is one registered tool with its prepared argument plan.
type tool struct {
	meta abi.Tool
	// decode reads the arguments object at data[pos:] into an *Args and
	// returns the position after it. (Not a *jsonx.Scanner: passing one to
	// a closure would move the caller's scanner to the heap.)
	decode func(data []byte, pos int) (args any, end int, err error)
	// invoke calls the handler with arguments from decode.
	invoke func(ctx context.Context, args any) (Result, error)
	// release gives back arguments from decode that will not be invoked.
	release func(args any)
}

// PluginOption declares something about the plugin: a capability it asks
// the operator to grant.
type PluginOption func(*abi.Manifest)

// AllowHTTP declares the hosts (host or host:port) the plugin reaches with
// HTTPDo. The operator must grant each in plugins.toml.
func AllowHTTP(hosts ...string) PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.HTTP = append(m.Capabilities.HTTP, hosts...) }
}

// UseKV declares that the plugin uses its key/value namespace (KVGet, KVPut,
// KVDelete, KVList).
func UseKV() PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.KV = true }
}

// UseConfig declares the config value names the plugin reads with Config.
func UseConfig(names ...string) PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.Config = append(m.Capabilities.Config, names...) }
}

// UseSecrets declares the secret names the plugin reads with Secret.
func UseSecrets(names ...string) PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.Secrets = append(m.Capabilities.Secrets, names...) }
}

// UseProgress declares that the plugin reports progress with Progress.
func UseProgress() PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.Progress = true }
}

// UseTools declares that the plugin reads the server's tool list as the
// caller sees it with Tools (for tools like whoami that explain access).
func UseTools() PluginOption {
	return func(m *abi.Manifest) { m.Capabilities.Tools = true }
}

// Plugin declares the plugin's name, version and description and the
// capabilities it needs. Call it once, from an init function. It panics if
// called twice: that is a programming error found by the first test.
func Plugin(name, version, description string, opts ...PluginOption) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.declared {
		panic(fmt.Sprintf("sdk: Plugin(%q) called twice", name))
	}
	if !validPluginName(name) || version == "" {
		panic(fmt.Sprintf("sdk: Plugin(%q, %q): want a name of 1 to 64 characters from a-z, 0-9, _ and -, and a version", name, version))
	}
	registry.declared = true
	m := &registry.manifest
	m.ABI, m.Name, m.Version, m.Description = abi.Version, name, version, description
	for _, o := range opts {
		o(m)
	}
}

// ToolOption adjusts one tool's declaration.
type ToolOption func(*abi.Tool) error

// RequirePermissions lists the AuthKit permission slugs a caller must all
// hold to see and call the tool. The operator may replace the rule in
// plugins.toml.
func RequirePermissions(permissions ...string) ToolOption {
	return func(t *abi.Tool) error {
		t.Permissions = append(t.Permissions, permissions...)
		return nil
	}
}

// Title sets the tool's human-readable title.
func Title(title string) ToolOption {
	return func(t *abi.Tool) error {
		t.Title = title
		return nil
	}
}

// Annotations sets the MCP hints (read-only, destructive, idempotent, open
// world) shown to clients.
func Annotations(a ToolAnnotations) ToolOption {
	return func(t *abi.Tool) error {
		t.Annotations = &a
		return nil
	}
}

// Output declares that the tool returns structured content of type T and
// publishes T's JSON Schema as the tool's output schema. T must be a struct
// (MCP wants an object). A tool with an output schema must set structured
// content on every successful result (WithStructured or Structured).
func Output[T any]() ToolOption {
	return func(t *abi.Tool) error {
		typ := reflect.TypeFor[T]()
		if typ.Kind() != reflect.Struct {
			return fmt.Errorf("output type %s is not a struct", typ)
		}
		c, err := codecFor(typ)
		if err != nil {
			return fmt.Errorf("output type %s: %w", typ, err)
		}
		s, err := schemaFor(c)
		if err != nil {
			return fmt.Errorf("output type %s: %w", typ, err)
		}
		t.OutputSchema = s
		return nil
	}
}

// Handler is a typed tool function. Args is a struct whose fields are the
// tool's arguments; see the package documentation for the tags that shape
// its schema. A returned error becomes a tool error the model reads.
type Handler[Args any] func(ctx context.Context, args Args) (Result, error)

// Tool registers a tool. Call it from an init function. The input schema is
// derived from Args once, here; an Args type that cannot be described (a
// channel, a recursive struct, a bad schema tag), an invalid or duplicate
// name, or a failing option panics with the reason, since these are
// programming errors the plugin's first test reports.
func Tool[Args any](name, description string, handler Handler[Args], opts ...ToolOption) {
	if err := addTool(name, description, handler, opts); err != nil {
		panic("sdk: " + err.Error())
	}
}

func addTool[Args any](name, description string, handler Handler[Args], opts []ToolOption) error {
	if !validToolName(name) {
		return fmt.Errorf("tool name %q: want 1 to %d of the characters A-Z, a-z, 0-9, '_', '-' and '.'", name, abi.MaxToolNameLen)
	}
	if handler == nil {
		return fmt.Errorf("tool %q: nil handler", name)
	}
	typ := reflect.TypeFor[Args]()
	if typ.Kind() != reflect.Struct {
		return fmt.Errorf("tool %q: arguments type %s is not a struct", name, typ)
	}
	c, err := codecFor(typ)
	if err != nil {
		return fmt.Errorf("tool %q: arguments: %w", name, err)
	}
	schema, err := schemaFor(c)
	if err != nil {
		return fmt.Errorf("tool %q: arguments: %w", name, err)
	}
	t := &tool{meta: abi.Tool{Name: name, Description: description, InputSchema: schema}}
	for _, o := range opts {
		if err := o(&t.meta); err != nil {
			return fmt.Errorf("tool %q: %w", name, err)
		}
	}
	// One spare Args value is reused call after call (an allocation is
	// what a WebAssembly guest pays most for); a call that finds it busy,
	// which only happens natively, allocates its own.
	var (
		spare = new(Args)
		busy  atomic.Bool
	)
	release := func(a *Args) {
		if a == spare {
			busy.Store(false)
		}
	}
	t.decode = func(data []byte, pos int) (any, int, error) {
		s := jsonx.Scanner{Data: data, Pos: pos}
		var args *Args
		if busy.CompareAndSwap(false, true) {
			args = spare
			*args = *new(Args)
		} else {
			args = new(Args)
		}
		if s.Null() {
			end := s.Pos
			s = jsonx.New([]byte("{}"))
			if err := c.decode(&s, reflect.ValueOf(args).Elem()); err != nil {
				release(args)
				return nil, end, err
			}
			return args, end, nil
		}
		if err := c.decode(&s, reflect.ValueOf(args).Elem()); err != nil {
			release(args)
			return nil, s.Pos, err
		}
		return args, s.Pos, nil
	}
	t.release = func(args any) {
		if p, ok := args.(*Args); ok {
			release(p)
		}
	}
	t.invoke = func(ctx context.Context, args any) (Result, error) {
		p := args.(*Args)
		a := *p
		release(p)
		return handler(ctx, a)
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.tools == nil {
		registry.tools = make(map[string]*tool)
	}
	if _, dup := registry.tools[name]; dup {
		return fmt.Errorf("tool %q registered twice", name)
	}
	if len(registry.tools) >= abi.MaxToolsPerPlugin {
		return fmt.Errorf("tool %q: more than %d tools", name, abi.MaxToolsPerPlugin)
	}
	registry.tools[name] = t
	table := &toolIndex{byName: maps.Clone(registry.tools)}
	if old := toolTable.Load(); old != nil {
		table.list = slices.Clone(old.list)
	}
	table.list = append(table.list, t)
	toolTable.Store(table)
	registry.manifest.Tools = append(registry.manifest.Tools, t.meta)
	return nil
}

// validPluginName applies the host's plugin-name rule.
func validPluginName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validToolName applies the MCP tool-name rule.
func validToolName(name string) bool {
	if len(name) == 0 || len(name) > abi.MaxToolNameLen {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Manifest returns the plugin's manifest JSON as the host will read it. It
// fails if Plugin was not called or the manifest is over its limit.
func Manifest() ([]byte, error) {
	registry.once.Do(func() {
		registry.mu.Lock()
		defer registry.mu.Unlock()
		if !registry.declared {
			registry.manifestErr = fmt.Errorf("sdk: Plugin was not called: declare the plugin's name and version in an init function")
			return
		}
		m := registry.manifest
		if m.Tools == nil {
			m.Tools = []abi.Tool{}
		}
		m.Tools = slices.Clone(m.Tools)
		b, err := json.Marshal(m)
		if err != nil {
			registry.manifestErr = fmt.Errorf("sdk: encode manifest: %w", err)
			return
		}
		if len(b) > abi.MaxManifestBytes {
			registry.manifestErr = fmt.Errorf("sdk: manifest is %d bytes, over the %d-byte limit", len(b), abi.MaxManifestBytes)
			return
		}
		registry.manifestJSON = b
	})
	return registry.manifestJSON, registry.manifestErr
}

// toolIndex is an immutable snapshot of registry.tools for the call path,
// replaced on every registration.
type toolIndex struct {
	list   []*tool
	byName map[string]*tool
}

var toolTable atomic.Pointer[toolIndex]

func lookupTool(name []byte) *tool {
	idx := toolTable.Load()
	if idx == nil {
		return nil
	}
	if len(idx.list) > 8 {
		return idx.byName[string(name)]
	}
	// A short scan is cheaper than hashing, in WebAssembly especially.
	for _, t := range idx.list {
		if jsonx.Equal(name, t.meta.Name) {
			return t
		}
	}
	return nil
}

// ToolAnnotations are the MCP hints for Annotations.
type ToolAnnotations = abi.ToolAnnotations
