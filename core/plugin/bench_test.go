package plugin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/toolgate/toolgate/sdk/abi"
)

// benchPlugins are the add plugins benchmarked: the ABI-only testdata one
// and, when it builds, the SDK-based plugins/add.
func benchPlugins(b *testing.B) map[string]string {
	out := map[string]string{"testdata-echo": testWasm(b, "echo")}
	if p, err := tryBuildWasm("add", "../../plugins/add"); err == nil {
		out["plugins-add"] = p
	} else {
		b.Logf("plugins/add not benchmarked: %v", err)
	}
	return out
}

func benchHost(b *testing.B, wasm string, mutate func(*Config)) *Host {
	b.Helper()
	cfg := Config{
		CacheDir:  testCacheDir,
		Plugins:   &PluginsFile{DropIn: DropInDeny, Plugins: map[string]PluginEntry{"add": {Path: wasm}}},
		DropInDir: b.TempDir(),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		PoolSize:  1,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// BenchmarkCompileCold compiles a plugin with an empty compilation cache.
func BenchmarkCompileCold(b *testing.B) {
	for name, path := range benchPlugins(b) {
		wasm, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			ctx := experimental.WithCompilationWorkers(context.Background(), runtime.GOMAXPROCS(0))
			for b.Loop() {
				cache, err := wazero.NewCompilationCacheWithDir(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true))
				if _, err := rt.CompileModule(ctx, wasm); err != nil {
					b.Fatal(err)
				}
				_ = rt.Close(ctx)
				_ = cache.Close(ctx)
			}
		})
	}
}

// BenchmarkLoadFromCache is a full plugin load (read, sha256, compile from
// a warm on-disk cache in a fresh process-level cache, instantiate,
// validate) as on a restart; "parallel" loads two plugins at once.
func BenchmarkLoadFromCache(b *testing.B) {
	for name, path := range benchPlugins(b) {
		benchHost(b, path, nil) // warm the on-disk cache
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				h := benchHost(b, path, nil)
				_ = h.Close(context.Background())
			}
		})
	}
	b.Run("parallel-2-plugins", func(b *testing.B) {
		plugins := map[string]PluginEntry{"echo": {Path: testWasm(b, "echo")}, "faulty": faultyEntry(b)}
		mk := func() {
			benchHost(b, "", func(c *Config) { c.Plugins.Plugins = plugins; c.KV = &memKV{} }).Close(context.Background())
		}
		mk()
		for b.Loop() {
			mk()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/2, "ms/plugin")
	})
}

// BenchmarkInstantiate creates and closes one fresh instance (what
// isolation = "per-call" and a recycled pool slot cost).
func BenchmarkInstantiate(b *testing.B) {
	for name, path := range benchPlugins(b) {
		b.Run(name, func(b *testing.B) {
			h := benchHost(b, path, nil)
			p := h.cur.Load().plugins[0]
			ctx := context.Background()
			for b.Loop() {
				inst, err := p.newInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				p.discard(ctx, inst)
			}
		})
	}
}

// nativeAdd is the testdata echo plugin's add, compiled natively: the same
// JSON decoding and encoding around the same arithmetic.
func nativeAdd(input []byte) []byte {
	var ci abi.CallInput
	if err := json.Unmarshal(input, &ci); err != nil {
		panic(err)
	}
	var args struct{ A, B float64 }
	if err := json.Unmarshal(ci.Arguments, &args); err != nil {
		panic(err)
	}
	out, err := json.Marshal(abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: strconv.FormatFloat(args.A+args.B, 'g', -1, 64)}}})
	if err != nil {
		panic(err)
	}
	return out
}

// BenchmarkCall is a warm call of add through the pool (timeouts enforced
// with WithCloseOnContextDone), next to the same function called natively.
// p50 and p99 are per-call latencies. "noop" answers a constant without
// decoding its input: the host's own cost per call.
func BenchmarkCall(b *testing.B) {
	args := json.RawMessage(`{"a":2,"b":40}`)
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
	b.Run("native", func(b *testing.B) {
		input, _ := json.Marshal(abi.CallInput{Tool: "add", Arguments: args, Caller: alice, CallID: "c1"})
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			nativeAdd(input)
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
	b.Run("pool-testdata-echo-noop", func(b *testing.B) {
		h := benchHost(b, testWasm(b, "echo"), nil)
		ctx := context.Background()
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := h.Call(ctx, "noop", args, alice, CallOptions{CallID: "c1"}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
	for name, path := range benchPlugins(b) {
		b.Run("pool-"+name, func(b *testing.B) {
			h := benchHost(b, path, nil)
			ctx := context.Background()
			if _, err := h.Call(ctx, "add", args, alice, CallOptions{}); err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := h.Call(ctx, "add", args, alice, CallOptions{CallID: "c1"}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			report(b, lat)
		})
	}
}
