package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// distinctBuild returns wasm with a custom section appended: a valid
// module that behaves the same but has another sha256, as a new build of
// the same plugin would.
func distinctBuild(wasm []byte, n int) []byte {
	name := fmt.Sprintf("build-%d", n)
	content := append([]byte{byte(len(name))}, name...)
	content = append(content, "payload"...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0, byte(len(content))) // custom section, its size
	return append(out, content...)
}

// liveHeap is the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestReplacedBuildsAreFreed: a build of a plugin that a reload replaced
// leaves nothing behind once its set is closed. The compilation cache is
// shared by every plugin runtime and keeps a compiled module until the
// module is closed (closing its runtime does not), so every build ever
// deployed used to stay in memory. The interpreter keeps the test fast:
// compiling is cheap, and each build holds tens of MiB of compiled code,
// so one leaked build would exceed the bound.
func TestReplacedBuildsAreFreed(t *testing.T) {
	echo, err := os.ReadFile(testWasm(t, "echo"))
	if err != nil {
		t.Fatal(err)
	}
	dropIn := t.TempDir()
	file := filepath.Join(dropIn, "echo.wasm")
	deploy := func(n int) {
		t.Helper()
		if err := os.WriteFile(file, distinctBuild(echo, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := liveHeap()
	deploy(0)
	h := mustTestHost(t, nil, dropIn, func(c *Config) { c.Interpreter = true })
	mustCall(t, h, "add", `{"a":1,"b":2}`, "3")
	oneBuild := int64(liveHeap()) - int64(before)

	const builds = 4
	base := liveHeap()
	for n := 1; n <= builds; n++ {
		deploy(n)
		if err := h.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", n, err)
		}
		mustCall(t, h, "add", `{"a":1,"b":2}`, "3")
	}
	if growth := int64(liveHeap()) - int64(base); growth > oneBuild/2 {
		t.Errorf("after %d replaced builds the heap grew by %d MiB; one loaded build takes %d MiB",
			builds, growth>>20, oneBuild>>20)
	}
}
