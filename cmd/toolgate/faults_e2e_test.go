package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/toolgate/toolgate/core/config"
	pluginhost "github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/sdk/abi"
)

// faultLoadCalls is how many add calls each good client makes in each
// measured phase of TestFaultsUnderLoad. The default keeps the test short;
// raise it to measure the latencies the test prints with -v:
//
//	go test -v -run TestFaultsUnderLoad -faultload.calls=500 ./cmd/toolgate/
var faultLoadCalls = flag.Int("faultload.calls", 20, "add calls per good client in each measured phase of TestFaultsUnderLoad")

// Limits of the faulty plugin in TestFaultsUnderLoad's plugins.toml.
const (
	faultLoopTimeout = 300 * time.Millisecond
	faultMemoryMiB   = 32
	faultMaxOutput   = 64 << 10
	faultBigBytes    = 256 << 10 // what "big" is asked to return
)

// faultLoadPlugins builds, once per test binary, what TestFaultsUnderLoad
// needs besides the reference plugins: the misbehaving test plugin of
// core/plugin (faulty.wasm) and a second build of plugins/add
// (add-trimpath.wasm: the same code built with -trimpath, so different
// bytes and a different sha256) to hot-swap with the first. The files go to
// a fixed folder under the temporary directory, written atomically, so
// repeated runs reuse it and the compilation cache keeps their native code.
var faultLoadPlugins = sync.OnceValues(func() (map[string]string, error) {
	dir := filepath.Join(os.TempDir(), "toolgate-cmd-faultload")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	builds := []struct{ name, pkg, flag string }{
		{"faulty", "./core/plugin/testdata/faulty", ""},
		{"add-trimpath", "./plugins/add", "-trimpath"},
	}
	out := make(map[string]string, len(builds))
	for _, b := range builds {
		tmp, err := os.CreateTemp(dir, b.name+"-*.part")
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", b.name, err)
		}
		tmp.Close()
		args := []string{"build", "-buildmode=c-shared", "-o", tmp.Name()}
		if b.flag != "" {
			args = append(args, b.flag)
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			return nil, &buildError{name: filepath.Base(tmp.Name()), out: string(b), err: err}
		}
		file := filepath.Join(dir, b.name+".wasm")
		if err := os.Rename(tmp.Name(), file); err != nil {
			return nil, fmt.Errorf("build %s: %w", b.name, err)
		}
		out[b.name] = file
	}
	return out, nil
})

// faultLoadPluginsTOML is the operator's plugins.toml of the test: the two
// good plugins with default limits, and the faulty plugin with every grant
// it asks for, a short timeout for its endless loop, a memory cap its bomb
// hits quickly and an output cap its big result exceeds. pool_size covers
// the test's concurrent clients of each plugin (4 good ones on add and
// whoami, 4 fault ones on faulty), so no call waits for a free instance
// (waiting is core/plugin's busy_test).
var faultLoadPluginsTOML = fmt.Sprintf(`drop_in = "deny"

[plugins.add]
pool_size = 4

[plugins.whoami]
pool_size = 4
list_tools = true

[plugins.faulty]
pool_size = 4
memory = "%dMiB"
kv = true
progress = true
http = ["127.0.0.1"]
config = { greeting = "hello" }
secrets = { token = "TOOLGATE_FAULTLOAD_UNSET" }

[plugins.faulty.tools.loop]
timeout = "%s"

[plugins.faulty.tools.big]
max_output = "%dKiB"
`, faultMemoryMiB, faultLoopTimeout, faultMaxOutput>>10)

// faultCase is one way the faulty plugin fails, and the tool error its
// caller must read.
type faultCase struct {
	tool string
	args map[string]any
	want *regexp.Regexp
}

func faultCases() []faultCase {
	// The host reports the size of the CallResult JSON the guest returned.
	big, err := json.Marshal(abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: strings.Repeat("x", faultBigBytes)}}})
	if err != nil {
		panic(err)
	}
	exact := func(s string) *regexp.Regexp { return regexp.MustCompile("^" + regexp.QuoteMeta(s) + "$") }
	return []faultCase{
		{"loop", nil, exact(fmt.Sprintf(`plugin "faulty" tool "loop": the call did not finish within %s`, faultLoopTimeout))},
		{"bomb", nil, exact(fmt.Sprintf(`plugin "faulty" tool "bomb": the plugin ran out of memory (limit %d MiB)`, faultMemoryMiB))},
		// The reason is wazero's ("wasm error: unreachable" for a Go
		// reactor's unrecovered panic), then the guest's panic line.
		{"trap", nil, regexp.MustCompile(`^plugin "faulty" tool "trap": the plugin crashed: [^()\n]+ \(panic: boom\)$`)},
		{"big", map[string]any{"n": faultBigBytes}, exact(fmt.Sprintf(`plugin "faulty" tool "big": the result is %d bytes, over the limit of %d bytes`, len(big), faultMaxOutput))},
	}
}

// Phases of TestFaultsUnderLoad, in order. Good calls are measured per
// phase.
const (
	phaseQuiet  int32 = iota // good clients only
	phaseFaults              // fault clients alongside
	phaseSwaps               // fault clients alongside, and add.wasm is being replaced
	phaseStop
	numPhases = phaseStop
)

var phaseNames = [numPhases]string{"quiet", "faults", "faults+swaps"}

// TestFaultsUnderLoad is the fault-injection test of the composed server:
// development mode, users signed in through the real OAuth flow, go-sdk
// MCP clients over streamable HTTP (stateless 2026-07-28 and stateful
// 2025-11-25 sessions). Good clients call add and whoami while other
// clients call the faulty plugin's endless loop, memory bomb, trap and
// oversized result, and while add.wasm in the drop-in folder is replaced
// (two builds of add alternately, and once rewritten with the same bytes)
// and each replacement goes live through the watcher. It asserts that no
// good call fails, that every fault call is answered with its own
// readable tool error, that every swap went live without an error, and
// afterwards that no instance, goroutine or heap memory is left over. It
// prints the good tools' p50/p99 per phase (with -v; see
// faultLoadCalls); those numbers are a measurement, not an assertion.
func TestFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	ref, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	extra, err := faultLoadPlugins()
	if err != nil {
		t.Fatal(err)
	}
	// Where the time goes, logged at the end.
	var timeline []string
	last := time.Now()
	mark := func(step string) {
		timeline = append(timeline, fmt.Sprintf("%s %s", step, time.Since(last).Round(time.Millisecond)))
		last = time.Now()
	}
	addA, addB := filepath.Join(ref, "add.wasm"), extra["add-trimpath"]
	shaA, shaB := fileSHA256(t, addA), fileSHA256(t, addB)
	if shaA == shaB {
		t.Fatalf("the two builds of add are identical (%s); the swaps would not be told apart", shaA)
	}

	dropIn := t.TempDir()
	for name, src := range map[string]string{"add": addA, "whoami": filepath.Join(ref, "whoami.wasm"), "faulty": extra["faulty"]} {
		installWasm(t, src, filepath.Join(dropIn, name+".wasm"))
	}
	pluginsFile := filepath.Join(t.TempDir(), "plugins.toml")
	if err := os.WriteFile(pluginsFile, []byte(faultLoadPluginsTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dropIn
		cfg.Plugins.Config = pluginsFile
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
		cfg.Plugins.Watch = true
		// Every call of the test is allowed; the per-user budget is
		// core/mcpserver's to test.
		cfg.MCP.ToolCallsPerMinute = 0
	})
	host := ls.s.Plugins()
	events := make(chan pluginhost.Event, 64)
	defer host.Subscribe(func(ev pluginhost.Event) {
		select {
		case events <- ev:
		default: // the swapper reads Tools() after each event it gets
		}
	})()
	gatherer, ok := ls.s.Registerer().(prometheus.Gatherer)
	if !ok {
		t.Fatalf("the server's registerer %T cannot be gathered", ls.s.Registerer())
	}
	plugins := []string{"add", "faulty", "whoami"}
	if got := pluginNames(host.Tools()); !slices.Equal(got, plugins) {
		t.Fatalf("plugins loaded: %v, want %v", got, plugins)
	}

	tokens := map[string]string{}
	for _, user := range []string{"alice@example.com", "bob@example.com"} {
		tokens[user], _ = signIn(t, ls.public, user)
	}
	// The clients' own transport, so that closing its idle connections
	// at the end leaves no connection goroutine on either side.
	transport := &http.Transport{MaxIdleConnsPerHost: 32}
	defer transport.CloseIdleConnections()
	connect := func(user, protocol string) *mcp.ClientSession {
		hc := &http.Client{Transport: &tokenTransport{token: tokens[user], base: transport}}
		tr := &mcp.StreamableClientTransport{Endpoint: ls.public + "/mcp", HTTPClient: hc, MaxRetries: -1}
		var opts *mcp.ClientSessionOptions
		if protocol != "" {
			opts = &mcp.ClientSessionOptions{ProtocolVersion: protocol}
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "faultload", Version: "1.0.0"}, nil).Connect(t.Context(), tr, opts)
		if err != nil {
			t.Fatalf("connect as %s (%q): %v", user, protocol, err)
		}
		return cs
	}
	faults := faultCases()

	// Warm-up: every tool once, so a broken setup fails here with one clear
	// message, and state created on first use exists before the baseline.
	for _, protocol := range []string{"", "2025-11-25"} {
		cs := connect("alice@example.com", protocol)
		if err := goodCall(t.Context(), cs, "alice@example.com", 0, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatalf("warm-up (%q): %v", protocol, err)
		}
		if err := goodCall(t.Context(), cs, "alice@example.com", 7, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Fatalf("warm-up (%q): %v", protocol, err)
		}
		for _, fc := range faults {
			if err := faultCall(t.Context(), cs, fc); err != nil {
				t.Fatalf("warm-up (%q): %v", protocol, err)
			}
		}
		cs.Close()
	}
	transport.CloseIdleConnections()
	quiesce(t, ls.s.Reload, gatherer, plugins)
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heapAfterGC()
	baseLinear := gaugeByPlugin(t, gatherer, "toolgate_plugin_linear_memory_bytes")
	mark("setup")

	type goodClient struct {
		cs   *mcp.ClientSession
		user string
		// latencies of add and whoami per phase; owned by the client's
		// goroutine until it ends.
		add, whoami [numPhases][]time.Duration
	}
	var good []*goodClient
	for _, user := range []string{"alice@example.com", "bob@example.com"} {
		for _, protocol := range []string{"", "2025-11-25"} {
			good = append(good, &goodClient{cs: connect(user, protocol), user: user})
		}
	}
	var faulters []*mcp.ClientSession
	for i := range len(faults) {
		user := "alice@example.com"
		if i%2 == 1 {
			user = "bob@example.com"
		}
		faulters = append(faulters, connect(user, ""))
	}

	var (
		phase      atomic.Int32 // phaseQuiet ...
		stopFaults atomic.Bool
		failMu     sync.Mutex
		failures   []string
		failed     atomic.Int64
		faultCalls = make([]atomic.Int64, len(faults)) // per faults[k]
		goodWG     sync.WaitGroup
		faultWG    sync.WaitGroup
		reached    = make(chan struct{}, len(good)*int(numPhases))
	)
	fail := func(format string, args ...any) {
		failed.Add(1)
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	stopAll := func() {
		phase.Store(phaseStop)
		stopFaults.Store(true)
		goodWG.Wait()
		faultWG.Wait()
	}
	defer stopAll() // on an early t.Fatal; a no-op after the normal end
	// waitReached waits until every good client has made faultLoadCalls
	// add calls in the current phase.
	waitReached := func(name string) {
		t.Helper()
		for range good {
			select {
			case <-reached:
			case <-time.After(3 * time.Minute):
				t.Fatalf("phase %s: good clients did not make %d calls each", name, *faultLoadCalls)
			}
		}
	}

	for i, gc := range good {
		goodWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 42))
			var inPhase int
			cur := phaseQuiet
			for n := 0; ; n++ {
				p := phase.Load()
				if p == phaseStop {
					return
				}
				if p != cur {
					cur, inPhase = p, 0
				}
				start := time.Now()
				err := goodCall(context.Background(), gc.cs, gc.user, n, r)
				d := time.Since(start)
				if err != nil {
					fail("%s, phase %s: %v", gc.user, phaseNames[p], err)
					continue
				}
				if n%8 == 7 {
					gc.whoami[p] = append(gc.whoami[p], d)
					continue
				}
				gc.add[p] = append(gc.add[p], d)
				if inPhase++; inPhase == *faultLoadCalls {
					reached <- struct{}{}
				}
			}
		})
	}
	waitReached(phaseNames[phaseQuiet])
	mark(phaseNames[phaseQuiet])

	phase.Store(phaseFaults)
	for i, cs := range faulters {
		faultWG.Go(func() {
			// Each client goes through every fault, starting at its own.
			for n := 0; n < len(faults) || !stopFaults.Load(); n++ {
				k := (i + n) % len(faults)
				if err := faultCall(context.Background(), cs, faults[k]); err != nil {
					fail("fault client %d: %v", i, err)
				}
				faultCalls[k].Add(1)
			}
		})
	}
	waitReached(phaseNames[phaseFaults])
	mark(phaseNames[phaseFaults])

	// Replace add.wasm in the drop-in folder, as an operator deploying a
	// new build would, and wait for each replacement to go live. The third
	// writes the same bytes again (a touch): it reloads all the same. The
	// last puts back the build of the baseline.
	phase.Store(phaseSwaps)
	swaps := []struct {
		file, sha string
	}{{addB, shaB}, {addA, shaA}, {addA, shaA}, {addB, shaB}, {addA, shaA}}
	for i, sw := range swaps {
		gen := host.Tools().Generation
		installWasm(t, sw.file, filepath.Join(dropIn, "add.wasm"))
		deadline := time.After(2 * time.Minute)
		for {
			snap := host.Tools()
			if snap.Generation > gen && pluginSHA256(snap, "add") == sw.sha {
				break
			}
			select {
			case ev := <-events:
				if ev.Err != nil {
					t.Fatalf("swap %d: the reload failed: %v", i+1, ev.Err)
				}
			case <-deadline:
				t.Fatalf("swap %d: add.wasm (sha256 %s) did not go live; serving generation %d with add %s",
					i+1, sw.sha, snap.Generation, pluginSHA256(snap, "add"))
			}
		}
	}
	waitReached(phaseNames[phaseSwaps])
	stopAll()
	mark(phaseNames[phaseSwaps])

	for _, f := range failures {
		t.Error(f)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d calls failed (the first %d are listed above)", n, len(failures))
	}
	for k, fc := range faults {
		if n := faultCalls[k].Load(); n < int64(len(faulters)) {
			t.Errorf("fault %s was called %d times, want at least %d", fc.tool, n, len(faulters))
		}
	}

	// Afterwards: the clients gone and the plugin set reloaded once more
	// with no call running, every retired set must have closed all its
	// instances, and what the load created must be gone.
	for _, gc := range good {
		gc.cs.Close()
	}
	for _, cs := range faulters {
		cs.Close()
	}
	transport.CloseIdleConnections()
	quiesce(t, ls.s.Reload, gatherer, plugins)

	// The server ends its side of each closed connection and session
	// asynchronously; the poll waits for that. The slack is for
	// goroutines that exist for a moment whatever the load did (a timer's
	// callback running, an audit batch being written), so that the check
	// does not depend on catching the server between two of them. A leak
	// per call, session, connection, instance or reload would exceed it
	// many times over: the load makes hundreds of calls over 8 sessions
	// and 6 reloads. Measured: the same count before and after.
	const goroutineSlack = 5
	var goroutines int
	if !pollUntil(time.Minute, func() bool {
		goroutines = runtime.NumGoroutine()
		return goroutines <= baseGoroutines+goroutineSlack
	}) {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("%d goroutines after the load, %d before (slack %d):\n%s", goroutines, baseGoroutines, goroutineSlack, stacks.String())
	}

	// The instances left are fresh ones of the same builds as at the
	// baseline, so their linear memory is exactly what it was.
	if linear := gaugeByPlugin(t, gatherer, "toolgate_plugin_linear_memory_bytes"); !maps.Equal(linear, baseLinear) {
		t.Errorf("plugin linear memory after the load %v, before %v", linear, baseLinear)
	}
	// Heap after GC, within half of what one leaked memory bomb would
	// hold. Measured: +5.6 MiB (+10.5 MiB with -race), nearly all of it
	// decoded add modules that wazero v1.12 keeps reachable after they
	// were freed: its engine's sorted list of compiled modules leaves a
	// stale pointer in its spare capacity on each removal (with that slot
	// cleared, the same run ends at +0.2 MiB). Whether those pointers hold
	// a plugin or a small host module depends on the order of removals,
	// hence the room.
	const heapSlack = (faultMemoryMiB / 2) << 20
	heap := heapAfterGC()
	mark("checks")
	if heap > baseHeap+heapSlack {
		t.Errorf("heap in use after GC is %.1f MiB after the load, %.1f MiB before (allowed: +%d MiB)",
			mib(heap), mib(baseHeap), heapSlack>>20)
	}

	var total [numPhases]int
	for p := range numPhases {
		var adds, whos []time.Duration
		for _, gc := range good {
			adds = append(adds, gc.add[p]...)
			whos = append(whos, gc.whoami[p]...)
		}
		total[p] = len(adds) + len(whos)
		t.Logf("%-12s add: %4d calls p50 %7s p99 %7s | whoami: %3d calls p50 %7s p99 %7s",
			phaseNames[p], len(adds), percentile(adds, 0.50), percentile(adds, 0.99),
			len(whos), percentile(whos, 0.50), percentile(whos, 0.99))
	}
	var fc []string
	for k, f := range faults {
		fc = append(fc, fmt.Sprintf("%s %d", f.tool, faultCalls[k].Load()))
	}
	t.Logf("%d good calls, fault calls: %s; %d swaps; goroutines %d -> %d; heap after GC %.1f -> %.1f MiB",
		total[0]+total[1]+total[2], strings.Join(fc, ", "), len(swaps), baseGoroutines, goroutines, mib(baseHeap), mib(heap))
	t.Logf("time: %s", strings.Join(timeline, ", "))
}

// callTimeout bounds each call of TestFaultsUnderLoad, so that a server
// that stopped answering fails the test instead of hanging it.
const callTimeout = 2 * time.Minute

// goodCall makes the n-th call of a good client: whoami every eighth call,
// add otherwise. It checks the answer.
func goodCall(ctx context.Context, cs *mcp.ClientSession, user string, n int, r *rand.Rand) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if n%8 == 7 {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil {
			return fmt.Errorf("whoami: %w", err)
		}
		if text := contentText(res); res.IsError || !strings.Contains(text, user) {
			return fmt.Errorf("whoami = %q (IsError %v), want it to name %s", text, res.IsError, user)
		}
		return nil
	}
	a, b := r.IntN(1000), r.IntN(1000)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": a, "b": b}})
	if err != nil {
		return fmt.Errorf("add(%d, %d): %w", a, b, err)
	}
	if text := contentText(res); res.IsError || text != strconv.Itoa(a+b) {
		return fmt.Errorf("add(%d, %d) = %q (IsError %v), want %d", a, b, text, res.IsError, a+b)
	}
	return nil
}

// faultCall calls one of the faulty plugin's faults and checks that the
// answer is a tool error with the expected text.
func faultCall(ctx context.Context, cs *mcp.ClientSession, fc faultCase) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	args := fc.args
	if args == nil {
		args = map[string]any{}
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: fc.tool, Arguments: args})
	if err != nil {
		return fmt.Errorf("%s: %w", fc.tool, err)
	}
	if text := contentText(res); !res.IsError || !fc.want.MatchString(text) {
		return fmt.Errorf("%s = %q (IsError %v), want a tool error matching %s", fc.tool, text, res.IsError, fc.want)
	}
	return nil
}

// quiesce reloads the plugin set with no call running and waits until
// every plugin has exactly the one warm instance a fresh load keeps: the
// retired sets have closed all of theirs (instances discarded after a
// fault, replacements started in the background, warm ones of the pool),
// as toolgate_plugin_instances counts them.
func quiesce(t *testing.T, reload func(context.Context) error, g prometheus.Gatherer, plugins []string) {
	t.Helper()
	if err := reload(t.Context()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	var live map[string]float64
	if !pollUntil(time.Minute, func() bool {
		live = gaugeByPlugin(t, g, "toolgate_plugin_instances")
		for _, p := range plugins {
			if live[p] != 1 {
				return false
			}
		}
		return len(live) == len(plugins)
	}) {
		t.Fatalf("live instances %v, want one for each of %v", live, plugins)
	}
}

// gaugeByPlugin reads a gauge labelled by plugin from the server's
// metrics, leaving out plugins where it is zero.
func gaugeByPlugin(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "plugin" && m.GetGauge().GetValue() != 0 {
					values[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return values
}

// pollUntil checks cond every 10ms until it holds or timeout passes, and
// reports whether it held.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// percentile returns the q-quantile of ds (nearest rank), or 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)].Round(10 * time.Microsecond)
}

// installWasm puts a copy of src at dst atomically (a temporary file in
// dst's folder, renamed), as a deployment should: the watcher never sees
// half a file. The temporary name does not end in .wasm, so the watcher
// ignores it.
func installWasm(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".part")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func pluginSHA256(s pluginhost.Snapshot, name string) string {
	for _, p := range s.Plugins {
		if p.Name == name {
			return p.SHA256
		}
	}
	return ""
}

func pluginNames(s pluginhost.Snapshot) []string {
	var names []string
	for _, p := range s.Plugins {
		names = append(names, p.Name)
	}
	return names
}

// tokenTransport adds a bearer token to every request over base.
type tokenTransport struct {
	token string
	base  http.RoundTripper
}

func (tt *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tt.token)
	return tt.base.RoundTrip(r)
}
