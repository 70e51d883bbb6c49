package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func waitEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("no reload event from the drop-in watcher")
		return Event{}
	}
}

func toolNames(s Snapshot) string {
	var names []string
	for _, t := range s.Tools {
		names = append(names, t.Plugin+"/"+t.Name)
	}
	return strings.Join(names, " ")
}

func TestHotSwapThroughWatcher(t *testing.T) {
	dropIn := t.TempDir()
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
	entry := faultyEntry(t)
	entry.Path = "" // <drop-in>/echo.wasm
	pf := &PluginsFile{Plugins: map[string]PluginEntry{"echo": entry}}
	h := mustTestHost(t, pf, dropIn, func(c *Config) {
		c.Watch = true
		c.Debounce = 20 * time.Millisecond
		c.KV = &memKV{}
	})
	events := make(chan Event, 16)
	defer h.Subscribe(func(ev Event) { events <- ev })()
	mustCall(t, h, "add", `{"a":1,"b":2}`, "3")

	// Replace echo.wasm with another module: the plugin "echo" now serves
	// the faulty tools.
	copyFile(t, testWasm(t, "faulty"), filepath.Join(dropIn, "echo.wasm"))
	ev := waitEvent(t, events)
	if ev.Err != nil || !strings.Contains(toolNames(ev.Snapshot), "echo/loop") || strings.Contains(toolNames(ev.Snapshot), "echo/add") {
		t.Fatalf("after replace: %v, tools %s", ev.Err, toolNames(ev.Snapshot))
	}
	mustCall(t, h, "ok", `{}`, "ok user_alice")
	if _, err := call(t, h, "add", `{}`); KindOf(err) != ErrKindUnknownTool {
		t.Fatalf("add after replace: %v", err)
	}

	// A bad drop-in fails the reload; the old set keeps serving.
	copyFile(t, testWasm(t, "badabi"), filepath.Join(dropIn, "badabi.wasm"))
	ev = waitEvent(t, events)
	if ev.Err == nil || !strings.Contains(ev.Err.Error(), `plugin "badabi"`) || !strings.Contains(ev.Err.Error(), "ABI version 99") {
		t.Fatalf("bad drop-in: err = %v", ev.Err)
	}
	if ev.Snapshot.Generation != h.Tools().Generation || !strings.Contains(toolNames(h.Tools()), "echo/ok") {
		t.Fatalf("old set not serving: %s", toolNames(h.Tools()))
	}
	mustCall(t, h, "ok", `{}`, "ok user_alice")
	if err := os.Remove(filepath.Join(dropIn, "badabi.wasm")); err != nil {
		t.Fatal(err)
	}
	if ev = waitEvent(t, events); ev.Err != nil {
		t.Fatalf("after removing the bad file: %v", ev.Err)
	}

	// Adding and removing a drop-in plugin adds and removes its tools.
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "extra.wasm"))
	ev = waitEvent(t, events)
	if ev.Err != nil || !strings.Contains(toolNames(ev.Snapshot), "extra/add") {
		t.Fatalf("after add: %v, tools %s", ev.Err, toolNames(ev.Snapshot))
	}
	mustCall(t, h, "add", `{"a":2,"b":2}`, "4")
	if err := os.Remove(filepath.Join(dropIn, "extra.wasm")); err != nil {
		t.Fatal(err)
	}
	ev = waitEvent(t, events)
	if ev.Err != nil || strings.Contains(toolNames(ev.Snapshot), "extra/") {
		t.Fatalf("after remove: %v, tools %s", ev.Err, toolNames(ev.Snapshot))
	}
}

func TestReloadBadPluginsFileKeepsOldSet(t *testing.T) {
	dir := t.TempDir()
	dropIn := filepath.Join(dir, "dist")
	if err := os.MkdirAll(dropIn, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
	file := filepath.Join(dir, "plugins.toml")
	if err := os.WriteFile(file, []byte("[plugins.echo]\npool_size = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := mustTestHost(t, nil, dropIn, func(c *Config) { c.Plugins = nil; c.PluginsFile = file })
	if got := h.Tools().Plugins[0].PoolSize; got != 1 {
		t.Fatalf("pool size = %d", got)
	}
	if err := os.WriteFile(file, []byte("[plugins.echo]\npool_size = 1\ncolour = \"red\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := h.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), file+`:3:1: unknown key "plugins.echo.colour"`) {
		t.Fatalf("Reload = %v", err)
	}
	mustCall(t, h, "add", `{"a":1,"b":2}`, "3")
}

// TestHammerDuringSwap calls through the pool from many goroutines while
// the set is swapped again and again: no call may be lost or fail, and
// calls in flight finish on the old set.
func TestHammerDuringSwap(t *testing.T) {
	dropIn := t.TempDir()
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
	fe := faultyEntry(t)
	pf := &PluginsFile{Plugins: map[string]PluginEntry{"faulty": fe}}
	h := mustTestHost(t, pf, dropIn, func(c *Config) {
		c.KV = &memKV{}
		c.PoolSize = 4
		c.Watch = true
		c.Debounce = 20 * time.Millisecond
	})
	events := make(chan Event, 16)
	defer h.Subscribe(func(ev Event) { events <- ev })()

	ctx := context.Background()
	// A call that spans the swaps.
	slow := make(chan error, 1)
	started := make(chan struct{})
	var once sync.Once
	go func() {
		res, err := h.Call(ctx, "slow", json.RawMessage(`{"ms":2000}`), alice, CallOptions{Progress: func(Progress) { once.Do(func() { close(started) }) }})
		if err == nil && text(res) != "slept" {
			err = fmt.Errorf("slow = %q", text(res))
		}
		slow <- err
	}()
	<-started

	const workers, minCalls, swaps = 8, 20, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errList []error
	total := 0
	swapped := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 0; ; n++ {
				if n >= minCalls {
					select {
					case <-swapped:
						mu.Lock()
						total += n
						mu.Unlock()
						return
					default:
					}
				}
				a, b := r.IntN(1000), r.IntN(1000)
				res, err := h.Call(ctx, "add", json.RawMessage(fmt.Sprintf(`{"a":%d,"b":%d}`, a, b)), alice, CallOptions{})
				if err == nil && text(res) != fmt.Sprint(a+b) {
					err = fmt.Errorf("add(%d,%d) = %s", a, b, text(res))
				}
				if err != nil {
					mu.Lock()
					errList = append(errList, err)
					mu.Unlock()
				}
			}
		})
	}
	gen := h.Tools().Generation
	for i := range swaps {
		if i%2 == 0 {
			// Through the watcher: replace the file.
			copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
			if ev := waitEvent(t, events); ev.Err != nil {
				t.Fatalf("reload after replacing the file: %v", ev.Err)
			}
			continue
		}
		if err := h.Reload(ctx); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		<-events
	}
	close(swapped)
	wg.Wait()
	for _, err := range errList {
		t.Error(err)
	}
	if err := <-slow; err != nil {
		t.Errorf("call across swaps: %v", err)
	}
	if h.Tools().Generation < gen+swaps {
		t.Errorf("generation %d -> %d after %d swaps", gen, h.Tools().Generation, swaps)
	}
	t.Logf("%d calls across %d swaps", total, swaps)
}
