package plugin

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// module builds a minimal module with one memory of one page and the given
// raw data section payload (nil: no data section), plus extra sections.
func module(data []byte, extra ...[]byte) []byte {
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, 5, 3, 1, 0, 1) // memory section: one memory, min 1 page
	for _, e := range extra {
		m = append(m, e...)
	}
	if data != nil {
		m = append(m, 11)
		m = binary.AppendUvarint(m, uint64(len(data)))
		m = append(m, data...)
	}
	return m
}

// active encodes active data segments for memory 0 at the given offsets.
func active(segs ...any) []byte {
	b := binary.AppendUvarint(nil, uint64(len(segs)/2))
	for i := 0; i < len(segs); i += 2 {
		b = append(b, 0, 0x41)
		b = appendSleb32(b, int32(segs[i].(int)))
		b = append(b, 0x0b)
		d := []byte(segs[i+1].(string))
		b = binary.AppendUvarint(b, uint64(len(d)))
		b = append(b, d...)
	}
	return b
}

// initialMemory instantiates a module without running anything and returns
// its memory.
func initialMemory(t testing.TB, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{}
	h.cfg.LogLimit = DefaultLogLimit
	p := &loadedPlugin{h: h, rt: rt, cm: cm}
	if err := p.instantiateHostModule(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	return bytes.Clone(mem)
}

func TestMergeDataSegments(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		segments int // after merging; 0 = not merged
	}{
		{"adjacent", module(active(0, "ab", 2, "cd", 4, "ef")), 1},
		{"small gap", module(active(16, "ab", 80, "cd")), 1},
		{"large gap", module(active(16, "ab", 83, "cd")), 2},
		{"negative offset is a high address", module(active(-3, "ab")), 1},
		{"overlap", module(active(0, "abcd", 2, "xy")), 0},
		{"descending", module(active(10, "ab", 0, "cd")), 1},
		{"out of order, overlapping", module(active(10, "ab", 0, "cdefghijklmn")), 0},
		{"passive", module([]byte{1, 1, 2, 'a', 'b'}), 0},
		{"global offset", module([]byte{1, 0, 0x23, 0, 0x0b, 1, 'a'}), 0},
		{"data count section", module(active(0, "ab"), []byte{12, 1, 1}), 0},
		{"no data", module(nil), 0},
		{"truncated", module(active(0, "abcd"))[:20], 0},
		{"not wasm", []byte("hello, world"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := mergeDataSegments(tt.in)
			if tt.segments == 0 {
				if !errors.Is(err, errNoMerge) {
					t.Fatalf("err = %v, want errNoMerge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := countSegments(t, out); got != tt.segments {
				t.Fatalf("segments = %d, want %d", got, tt.segments)
			}
			if tt.name != "negative offset is a high address" {
				if !bytes.Equal(initialMemory(t, out), initialMemory(t, tt.in)) {
					t.Fatal("merged module starts with different memory")
				}
			}
		})
	}
}

func countSegments(t testing.TB, wasm []byte) int {
	for i := 8; i < len(wasm); {
		id := wasm[i]
		size, n := binary.Uvarint(wasm[i+1:])
		if id == 11 {
			c, _ := binary.Uvarint(wasm[i+1+n:])
			return int(c)
		}
		i += 1 + n + int(size)
	}
	t.Fatal("no data section")
	return 0
}

// TestMergeDataSegmentsGoPlugins checks real Go output: far fewer segments
// and byte-identical initial memory.
func TestMergeDataSegmentsGoPlugins(t *testing.T) {
	for _, name := range []string{"echo", "faulty"} {
		wasm, err := os.ReadFile(testWasm(t, name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := mergeDataSegments(wasm)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before, after := countSegments(t, wasm), countSegments(t, out)
		if after*100 > before {
			t.Errorf("%s: %d segments became %d", name, before, after)
		}
		if !bytes.Equal(initialMemory(t, out), initialMemory(t, wasm)) {
			t.Fatalf("%s: merged module starts with different memory", name)
		}
		t.Logf("%s: %d segments -> %d, %d -> %d bytes", name, before, after, len(wasm), len(out))
	}
}

func FuzzMergeDataSegments(f *testing.F) {
	f.Add(module(active(0, "ab", 2, "cd", 70, "ef")))
	f.Add(module(active(0, "abcd", 2, "xy")))
	f.Add(module([]byte{1, 1, 2, 'a', 'b'}))
	f.Add(module(active(-3, "ab"), []byte{12, 1, 1}))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := mergeDataSegments(wasm)
		if err != nil {
			return
		}
		again, err := mergeDataSegments(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("merging is not idempotent: %v", err)
		}
	})
}

// BenchmarkInstantiateMerged compares instantiating (with _initialize) the
// Go-built echo plugin as built and with its data segments merged.
func BenchmarkInstantiateMerged(b *testing.B) {
	orig, err := os.ReadFile(testWasm(b, "echo"))
	if err != nil {
		b.Fatal(err)
	}
	merged, err := mergeDataSegments(orig)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
	}{{"original", orig}, {"merged", merged}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			cache, err := wazero.NewCompilationCacheWithDir(testCacheDir)
			if err != nil {
				b.Fatal(err)
			}
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true))
			defer rt.Close(ctx)
			h := &Host{}
			h.cfg.LogLimit = DefaultLogLimit
			p := &loadedPlugin{h: h, rt: rt}
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			if err := p.instantiateHostModule(ctx); err != nil {
				b.Fatal(err)
			}
			cm, err := rt.CompileModule(ctx, tc.wasm)
			if err != nil {
				b.Fatal(err)
			}
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
			for b.Loop() {
				mod, err := rt.InstantiateModule(ctx, cm, cfg)
				if err != nil {
					b.Fatal(err)
				}
				_ = mod.Close(ctx)
			}
		})
	}
}
