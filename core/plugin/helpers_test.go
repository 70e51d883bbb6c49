package plugin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"

	"github.com/toolgate/toolgate/core/internal/testutil"
)

// testCacheDir is the one wazero compilation cache shared by every test in
// this binary (and by later runs): wazero keys entries by module content.
var testCacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")

var (
	buildMu    sync.Mutex
	builtWasm  = map[string]string{}
	buildError = map[string]error{}
)

// testWasm builds testdata/<name> for wasip1 once per test binary and
// returns the .wasm path. Go's build cache makes rebuilding cheap.
func testWasm(tb testing.TB, name string) string {
	tb.Helper()
	return buildWasm(tb, name, "./testdata/"+name)
}

// buildWasm builds the Go package pkg for wasip1 as a reactor named name,
// once per test binary.
func buildWasm(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := tryBuildWasm(name, pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func tryBuildWasm(name, pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := builtWasm[name]; ok {
		return p, nil
	}
	if err, ok := buildError[name]; ok {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "toolgate-test-wasm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name+".wasm")
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		buildError[name] = fmt.Errorf("build %s: %v\n%s", pkg, err, b)
		return "", buildError[name]
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	builtWasm[name] = out
	return out, nil
}

// syncBuffer collects log output the test reads while the server runs.
type syncBuffer = testutil.SyncBuffer

type testHost struct {
	*Host
	logs *syncBuffer
}

// newTestHost starts a host over the given plugins file and drop-in folder
// (a fresh empty one when dropIn is ""). mutate may adjust the config.
func newTestHost(t *testing.T, pf *PluginsFile, dropIn string, mutate func(*Config)) (*testHost, error) {
	t.Helper()
	logs := &syncBuffer{}
	if dropIn == "" {
		dropIn = t.TempDir()
	}
	if pf == nil {
		pf = &PluginsFile{}
	}
	if pf.DropIn == "" {
		pf.DropIn = DropInAllow
	}
	if pf.Name == "" {
		pf.Name = "plugins.toml"
	}
	cfg := Config{
		CacheDir:  testCacheDir,
		Plugins:   pf,
		DropInDir: dropIn,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PoolSize:  2,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testHost{Host: h, logs: logs}, nil
}

func mustTestHost(t *testing.T, pf *PluginsFile, dropIn string, mutate func(*Config)) *testHost {
	t.Helper()
	h, err := newTestHost(t, pf, dropIn, mutate)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// text returns the text content of a result.
func text(r abi.CallResult) string {
	var parts []string
	for _, c := range r.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

var alice = abi.Caller{UserID: "user_alice", Permissions: []string{"image_generation"}}

// memKV is an in-memory store.PluginKV for tests.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte // plugin + "\x00" + key
}

var _ store.PluginKV = (*memKV)(nil)

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
		k.m = map[string][]byte{}
	}
	k.m[plugin+"\x00"+key] = bytes.Clone(value)
	return nil
}

func (k *memKV) KVDelete(_ context.Context, plugin, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, plugin+"\x00"+key)
	return nil
}

func (k *memKV) KVList(_ context.Context, plugin, prefix, after string, limit int) ([]string, error) {
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
	if len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

// faultyEntry grants the faulty plugin everything it asks for.
func faultyEntry(t testing.TB, httpGrants ...string) PluginEntry {
	t.Helper()
	e := PluginEntry{
		Path:     testWasm(t, "faulty"),
		KV:       true,
		Config:   map[string]string{"greeting": "hello"},
		Secrets:  map[string]string{"token": "TOOLGATE_TEST_TOKEN"},
		Progress: true,
	}
	if len(httpGrants) == 0 {
		httpGrants = []string{"127.0.0.1"}
	}
	for _, g := range httpGrants {
		hg, err := parseHostGrant(g)
		if err != nil {
			t.Fatal(err)
		}
		e.HTTP = append(e.HTTP, hg)
	}
	return e
}
