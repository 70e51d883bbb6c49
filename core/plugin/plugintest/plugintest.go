// Package plugintest lets plugin authors test a compiled .wasm in-process
// against the real toolgate plugin host, with one call in a test:
//
//	func TestAdd(t *testing.T) {
//		h := plugintest.New(t, "add.wasm", plugintest.Options{})
//		res := h.MustCall("add", map[string]any{"a": 2, "b": 3})
//		if res.Content[0].Text != "5" { t.Fatal(res) }
//	}
//
// The plugin is loaded exactly as a server would load it (manifest and
// grant checks, limits, host functions), with the grants in
// Options.Entry, an in-memory key/value store and the environment in
// Options.Env for secrets. Compiled code is cached under the system's temp
// directory, so only the first run of a changed .wasm pays for compilation.
package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"
)

// Options configure the test host. The zero value grants nothing.
type Options struct {
	// Name is the plugin's name; default the file name without ".wasm".
	Name string
	// Entry holds the grants and limits, as a [plugins.<name>] table in
	// plugins.toml would. Its Path is ignored.
	Entry plugin.PluginEntry
	// Env holds the environment variables secrets are read from.
	Env map[string]string
	// KV is the key/value store; default an empty in-memory one.
	KV store.PluginKV
	// Caller is who calls; default a user "user_test" with no permissions.
	Caller *abi.Caller
}

// Host is a plugin host serving one plugin for a test.
type Host struct {
	t      testing.TB
	host   *plugin.Host
	caller abi.Caller
}

// New loads the plugin at wasmPath and closes it when the test ends. It
// fails the test when the plugin is refused.
func New(t testing.TB, wasmPath string, opts Options) *Host {
	t.Helper()
	name := opts.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(wasmPath), ".wasm")
	}
	entry := opts.Entry
	abs, err := filepath.Abs(wasmPath)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	entry.Path = abs
	kv := opts.KV
	if kv == nil {
		kv = &memKV{}
	}
	caller := abi.Caller{UserID: "user_test", Permissions: []string{}}
	if opts.Caller != nil {
		caller = *opts.Caller
	}
	h, err := plugin.New(context.Background(), plugin.Config{
		CacheDir:  filepath.Join(os.TempDir(), "toolgate-plugintest-cache"),
		Plugins:   &plugin.PluginsFile{DropIn: plugin.DropInDeny, Plugins: map[string]plugin.PluginEntry{name: entry}, Name: "plugins.toml"},
		DropInDir: t.TempDir(),
		KV:        kv,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		LookupEnv: func(k string) (string, bool) { v, ok := opts.Env[k]; return v, ok },
	})
	if err != nil {
		t.Fatalf("plugintest: load %s: %v", wasmPath, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("plugintest: close: %v", err)
		}
	})
	return &Host{t: t, host: h, caller: caller}
}

// Tools returns the loaded tools with their rules and limits.
func (h *Host) Tools() []plugin.Tool { return h.host.Tools().Tools }

// Call calls a tool with args (marshalled to JSON unless it already is a
// json.RawMessage or []byte). Plugin failures are *plugin.Error.
func (h *Host) Call(tool string, args any) (abi.CallResult, error) {
	h.t.Helper()
	var raw json.RawMessage
	switch a := args.(type) {
	case json.RawMessage:
		raw = a
	case []byte:
		raw = a
	case nil:
		raw = json.RawMessage("{}")
	default:
		b, err := json.Marshal(a)
		if err != nil {
			h.t.Fatalf("plugintest: marshal arguments: %v", err)
		}
		raw = b
	}
	return h.host.Call(context.Background(), tool, raw, h.caller, plugin.CallOptions{CallID: "plugintest"})
}

// MustCall is Call that fails the test on a plugin failure.
func (h *Host) MustCall(tool string, args any) abi.CallResult {
	h.t.Helper()
	res, err := h.Call(tool, args)
	if err != nil {
		h.t.Fatalf("plugintest: %s: %v", tool, err)
	}
	return res
}

// Host returns the underlying plugin host.
func (h *Host) Host() *plugin.Host { return h.host }

// testWriter sends the host's log to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// memKV is an in-memory store.PluginKV (no expiry).
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) KVGet(_ context.Context, plugin, key string) ([]byte, error) {
	if err := store.ValidatePluginKey(plugin, key); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[plugin+"\x00"+key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (k *memKV) KVPut(_ context.Context, plugin, key string, value []byte, _ time.Duration) error {
	if err := store.ValidatePluginKey(plugin, key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[string][]byte)
	}
	k.m[plugin+"\x00"+key] = bytes.Clone(value)
	return nil
}

func (k *memKV) KVDelete(_ context.Context, plugin, key string) error {
	if err := store.ValidatePluginKey(plugin, key); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, plugin+"\x00"+key)
	return nil
}

func (k *memKV) KVList(_ context.Context, plugin, prefix, after string, limit int) ([]string, error) {
	if err := store.ValidatePluginPrefix(plugin, prefix); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var keys []string
	for full := range k.m {
		p, key, _ := strings.Cut(full, "\x00")
		if p == plugin && strings.HasPrefix(key, prefix) && key > after {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}
