// Command bench is toolgate's benchmark harness, run by "make bench". It
// measures, on one machine in one go, three MCP servers answering the same
// tools/call add over streamable HTTP:
//
//   - floor: a go-sdk v1.8.0 server with a native Go add tool, stateless
//     with JSON responses, no authentication (this program started again
//     with -serve-floor, so it has a process of its own);
//   - toolgate: "toolgate serve" in development mode with the add plugin,
//     a bearer token obtained through its OAuth flow, the permission gate
//     and audit on: the production path;
//   - peer: the same tool on the official TypeScript MCP SDK with its
//     bearer-auth middleware (bench/peer, Node).
//
// A Go load generator drives each at fixed concurrencies with keep-alive
// connections, after a warm-up, for a fixed duration, in interleaved
// rounds (the order of the systems rotates), and checks every answer's
// sum. It also measures toolgate's start to ready with the three
// reference plugins (empty compilation cache, then from the cache),
// drop-in to listed, resident memory (right after calls and once idle,
// with where it is: /proc/<pid>/smaps and the Go runtime's metrics),
// generateImage latency, takes a CPU profile of toolgate at the highest
// concurrency through its pprof endpoint (profile-toolgate-<clients>.md),
// compares toolgate on PostgreSQL with toolgate on Badger (the same load,
// and the store benchmarks of both), and runs the bearer verification and
// plugin call Go benchmarks. The
// results go to a Markdown file; the last line printed is
//
//	bench: floor_ratio=<toolgate/floor throughput> peer_ratio=<toolgate/peer throughput> p99_ratio=<toolgate/floor p99>
//
// at the highest concurrency.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	toolgate   string        // the toolgate binary
	plugins    string        // folder with add.wasm, whoami.wasm, generateimage.wasm
	peer       string        // the Node peer's folder (npm ci done)
	node       string        // the node binary
	out        string        // the Markdown results file
	root       string        // the module root, for go test
	levels     []int         // concurrencies
	warmup     time.Duration // warm-up before each measured run
	duration   time.Duration // each measured run
	rounds     int           // interleaved rounds
	imageCalls int           // generateImage calls per step count
	goBench    bool          // run the Go benchmarks
	memoryOnly bool          // measure only toolgate's memory with the three plugins
	profile    bool          // take a CPU profile of toolgate at the highest concurrency
	postgres   bool          // compare the PostgreSQL backend with Badger
	env        []string      // extra KEY=VALUE settings for toolgate, for experiments
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-serve-floor" {
		if err := serveFloor(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var o options
	levels := "1,8,64"
	flag.StringVar(&o.toolgate, "toolgate", "bin/toolgate", "the toolgate binary")
	flag.StringVar(&o.plugins, "plugins", "plugins/dist", "folder holding add.wasm, whoami.wasm and generateimage.wasm")
	flag.StringVar(&o.peer, "peer", "bench/peer", "the TypeScript peer's folder, with node_modules installed")
	flag.StringVar(&o.node, "node", "node", "the node binary")
	flag.StringVar(&o.out, "out", "bench/results/latest.md", "the Markdown results file")
	flag.StringVar(&o.root, "root", ".", "the module root, where the Go benchmarks run")
	flag.StringVar(&levels, "concurrency", levels, "comma-separated client counts")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured run")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "each measured run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	flag.IntVar(&o.imageCalls, "image-calls", 5, "generateImage calls per step count")
	flag.BoolVar(&o.goBench, "go-bench", true, "also run the bearer verification and plugin call Go benchmarks")
	flag.BoolVar(&o.profile, "profile", true, "take a CPU profile of toolgate at the highest concurrency and write its top functions to profile-toolgate-<clients>.md beside -out")
	flag.BoolVar(&o.postgres, "postgres", true, "also compare toolgate on PostgreSQL with toolgate on Badger ($TOOLGATE_TEST_POSTGRES_URL's server, or a throwaway cluster from .ci/postgres; the report says so when none can be started)")
	flag.BoolVar(&o.memoryOnly, "memory-only", false, "only start toolgate with the three plugins (empty cache, then from the cache), print its start and memory measurements, and write no report")
	flag.Func("toolgate-env", "extra `KEY=VALUE` in toolgate's environment, e.g. TOOLGATE_STORE_SYNC_WRITES=false (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		o.env = append(o.env, v)
		return nil
	})
	flag.Parse()
	var err error
	if o.levels, err = parseLevels(levels); err != nil || o.rounds < 1 || o.duration <= 0 || o.imageCalls < 1 {
		fmt.Fprintf(os.Stderr, "bench: bad flags (concurrency %q, rounds %d, duration %s, image-calls %d)\n", levels, o.rounds, o.duration, o.imageCalls)
		os.Exit(2)
	}
	for _, p := range []*string{&o.toolgate, &o.plugins, &o.peer, &o.out, &o.root} {
		if *p, err = filepath.Abs(*p); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = runBench(ctx, o)
	stop()
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// parseLevels parses "1,8,64".
func parseLevels(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad concurrency %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no concurrency")
	}
	return out, nil
}

// results is everything measured, for the report.
type results struct {
	date     time.Time
	cpu      string
	cores    int
	goVer    string
	nodeVer  string
	opts     options
	systems  []string
	load     map[string]map[int]stats // system → concurrency → stats
	idleRSS  map[string]int64         // system → VmRSS before the load
	extras   []extra
	warnings []string
	// backends compares the PostgreSQL backend with Badger (nil when not
	// run).
	backends *backendResults
	// loadStart and loadEnd are the machine's load averages when the run
	// started and ended: other work on the machine skews the numbers.
	loadStart, loadEnd string
}

// extra is one measurement outside the load table.
type extra struct {
	what, value, target string
}

func runBench(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res := &results{date: time.Now().UTC(), cpu: cpuModel(), cores: runtime.NumCPU(), goVer: runtime.Version(), opts: o,
		systems: []string{"floor", "toolgate", "peer"}, load: map[string]map[int]stats{}, idleRSS: map[string]int64{}, loadStart: loadAverage()}
	if v, err := exec.Command(o.node, "--version").Output(); err == nil {
		res.nodeVer = strings.TrimSpace(string(v))
	}
	tmp, err := os.MkdirTemp("", "toolgate-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	client := newLoadClient(4)
	defer client.CloseIdleConnections()

	// Start to ready with the three reference plugins, memory, generateImage.
	data := filepath.Join(tmp, "data")
	three := filepath.Join(tmp, "plugins3")
	threeConfig := filepath.Join(tmp, "plugins3.toml")
	if err := os.Mkdir(three, 0o755); err != nil {
		return fmt.Errorf("plugins folder: %w", err)
	}
	for _, name := range []string{"add.wasm", "whoami.wasm", "generateimage.wasm"} {
		if err := copyFile(filepath.Join(o.plugins, name), filepath.Join(three, name)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(threeConfig, []byte(threePluginsConfig), 0o644); err != nil {
		return fmt.Errorf("plugins file: %w", err)
	}
	log.Info("toolgate with three plugins, empty compilation cache")
	if err := threePlugins(ctx, client, res, o, data, three, threeConfig); err != nil {
		return err
	}
	if o.memoryOnly {
		for _, e := range res.extras {
			fmt.Printf("%s: %s\n", e.what, e.value)
		}
		return nil
	}

	if err := instanceMemory(ctx, res, o, data, tmp); err != nil {
		return err
	}

	// The load: toolgate gets add by drop-in into an empty folder.
	drop := filepath.Join(tmp, "dropin")
	dropConfig := filepath.Join(tmp, "plugins.toml")
	if err := os.Mkdir(drop, 0o755); err != nil {
		return fmt.Errorf("drop-in folder: %w", err)
	}
	if err := os.WriteFile(dropConfig, nil, 0o644); err != nil {
		return fmt.Errorf("plugins file: %w", err)
	}
	tg, err := startToolgate(ctx, o, data, drop, dropConfig, false)
	if err != nil {
		return err
	}
	defer tg.stop()
	token, err := signIn(ctx, tg.public, "alice@example.com")
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	d, err := dropIn(ctx, client, filepath.Join(o.plugins, "add.wasm"), drop, tg.public+"/mcp", token, "add")
	if err != nil {
		return err
	}
	res.extras = append(res.extras, extra{"drop-in to listed (add.wasm into the watched folder until tools/list shows add; compilation cache warm)", ms(d), "< 2 s"})

	floor, floorAddr, err := startProc(ctx, "floor", exec.Command(selfPath(), "-serve-floor"), false, time.Minute, prefixed("listening "))
	if err != nil {
		return err
	}
	defer floor.stop()
	peerToken := rand.Text()
	peerCmd := exec.Command(o.node, "server.mjs")
	peerCmd.Dir = o.peer
	peerCmd.Env = append(os.Environ(), "PEER_TOKEN="+peerToken)
	peer, peerPort, err := startProc(ctx, "peer", peerCmd, false, time.Minute, prefixed("listening "))
	if err != nil {
		return err
	}
	defer peer.stop()

	systems := map[string]system{
		"floor":    {name: "floor", url: "http://" + floorAddr + "/mcp", pid: floor.cmd.Process.Pid},
		"toolgate": {name: "toolgate", url: tg.public + "/mcp", token: token, pid: tg.cmd.Process.Pid},
		"peer":     {name: "peer", url: "http://127.0.0.1:" + peerPort + "/mcp", token: peerToken, pid: peer.cmd.Process.Pid},
	}
	var seq atomic.Int64
	for _, name := range res.systems {
		s := systems[name]
		id := seq.Add(1)
		if err := call(ctx, client, s, id, 40, 2); err != nil {
			return fmt.Errorf("%s answers add wrongly: %w", name, err)
		}
		if v, err := rss(s.pid); err == nil {
			res.idleRSS[name] = v
		}
	}
	runs := map[string]map[int][]run{}
	for _, name := range res.systems {
		runs[name] = map[int][]run{}
	}
	for round := range o.rounds {
		for li, level := range o.levels {
			lc := newLoadClient(level)
			for k := range res.systems {
				name := res.systems[(k+round+li)%len(res.systems)]
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r := load(ctx, lc, systems[name], level, o.warmup, o.duration, &seq)
				log.Info("run", "round", round+1, "system", name, "clients", level, "req/s", fmt.Sprintf("%.0f", r.throughput()), "errors", r.errs)
				runs[name][level] = append(runs[name][level], r)
			}
			lc.CloseIdleConnections()
		}
	}
	for name, byLevel := range runs {
		res.load[name] = map[int]stats{}
		for level, rs := range byLevel {
			res.load[name][level] = summarize(rs)
		}
	}
	tg.stop()
	floor.stop()
	peer.stop()

	if o.postgres {
		log.Info("toolgate on PostgreSQL and on Badger", "clients", o.levels[len(o.levels)-1])
		if err := compareBackends(ctx, res, o, tmp, data, drop, dropConfig); err != nil {
			return err
		}
	}
	if o.profile {
		top := o.levels[len(o.levels)-1]
		log.Info("cpu profile of toolgate", "clients", top)
		path := filepath.Join(filepath.Dir(o.out), fmt.Sprintf("profile-toolgate-%d.md", top))
		if err := profileToolgate(ctx, o, data, drop, dropConfig, top, path); err != nil {
			res.warnings = append(res.warnings, err.Error())
		}
	}
	if o.goBench {
		log.Info("go benchmarks")
		goBenchmarks(ctx, res, o)
	}
	res.loadEnd = loadAverage()
	if err := writeReport(o.out, res); err != nil {
		return err
	}
	top := o.levels[len(o.levels)-1]
	t, f, p := res.load["toolgate"][top], res.load["floor"][top], res.load["peer"][top]
	fmt.Printf("bench: floor_ratio=%.2f peer_ratio=%.2f p99_ratio=%.2f\n", ratio(t.throughput, f.throughput), ratio(t.throughput, p.throughput), ratio(float64(t.p99), float64(f.p99)))
	return nil
}

// threePlugins starts toolgate with the three reference plugins twice on
// one data directory: first with an empty compilation cache, then from
// the cache; it measures start to ready, resident memory and
// generateImage.
func threePlugins(ctx context.Context, client *http.Client, res *results, o options, data, dir, config string) error {
	for _, cache := range []string{"empty compilation cache", "from the compilation cache"} {
		tg, err := startToolgate(ctx, o, data, dir, config, false)
		if err != nil {
			return err
		}
		err = exercise(ctx, client, res, o, tg, cache, cache == "empty compilation cache")
		tg.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// exercise measures one start of toolgate with the three plugins: start
// to ready, resident memory before and after a call of each tool, and,
// with images, generateImage latency.
func exercise(ctx context.Context, client *http.Client, res *results, o options, tg *toolgateServer, cache string, images bool) error {
	target := ""
	if cache != "empty compilation cache" {
		target = "< 1 s"
	}
	res.extras = append(res.extras, extra{"start to ready, three plugins, " + cache + " (process start until /readyz is 200)", ms(tg.ready), target})
	url := tg.public + "/mcp"
	if m, err := measureMemory(ctx, client, tg.cmd.Process.Pid, tg.public+"/metrics"); err == nil {
		res.extras = append(res.extras,
			extra{"resident memory after ready, three plugins, before any call, " + cache, mib(m.rss), ""},
			extra{"where it is, after ready, " + cache, m.String(), ""})
	}
	token, err := signIn(ctx, tg.public, "alice@example.com")
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	tools, err := listTools(ctx, client, url, token)
	if err != nil {
		return err
	}
	for _, want := range []string{"add", "whoami", "generateImage"} {
		if !slices.Contains(tools, want) {
			return fmt.Errorf("toolgate with three plugins lists %v, without %s", tools, want)
		}
	}
	if err := call(ctx, client, system{url: url, token: token}, 2, 40, 2); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	if r, err := rpc(ctx, client, url, token, 3, "tools/call", map[string]any{"name": "whoami", "arguments": map[string]any{}}); err != nil {
		return err
	} else if _, err := toolText(r); err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	id := int64(10)
	for _, steps := range []int{4, 8} {
		var lat []float64
		for range o.imageCalls {
			id++
			d, err := generateImage(ctx, client, url, token, id, steps)
			if err != nil {
				return err
			}
			lat = append(lat, float64(d))
			if !images {
				break
			}
		}
		if images {
			res.extras = append(res.extras, extra{fmt.Sprintf("generateImage (procedural backend), steps %d, median of %d calls through /mcp", steps, o.imageCalls), ms(time.Duration(median(lat))), ""})
		}
	}
	metrics := tg.public + "/metrics"
	m, err := measureMemory(ctx, client, tg.cmd.Process.Pid, metrics)
	if err != nil {
		return err
	}
	res.extras = append(res.extras,
		extra{"resident memory right after the calls, three plugins warm, " + cache, mib(m.rss), ""},
		extra{"where it is, right after the calls, " + cache, m.String(), ""})
	// Idle: once the calls have stopped, toolgate's plugin host collects
	// garbage and returns free memory to the OS (5-10 s after the last
	// call); wait for that release.
	start := time.Now()
	if err := pollEvery(ctx, time.Minute, 100*time.Millisecond, func() (bool, error) {
		n, err := memoryReleases(ctx, client, metrics)
		return err == nil && n > m.releases, err
	}); err != nil {
		return fmt.Errorf("waiting for toolgate to return memory once idle: %w", err)
	}
	waited := time.Since(start)
	idle, err := measureMemory(ctx, client, tg.cmd.Process.Pid, metrics)
	if err != nil {
		return err
	}
	res.extras = append(res.extras,
		extra{fmt.Sprintf("resident memory idle, three plugins warm (after calls to each, once toolgate returned free memory, %.1f s later), %s", waited.Seconds(), cache), mib(idle.rss), "≤ 150 MiB"},
		extra{"where it is, idle, " + cache, idle.String(), ""})
	return nil
}

// instanceMemory starts toolgate with add alone, once with a pool of one
// warm instance and once with a pool of five, drives enough concurrent
// calls to warm every instance, and reports the difference in resident
// memory per instance.
func instanceMemory(ctx context.Context, res *results, o options, data, tmp string) error {
	const small, large = 1, 5
	var sizes [2]int64
	for i, pool := range []int{small, large} {
		dir := filepath.Join(tmp, fmt.Sprintf("pool%d", pool))
		config := dir + ".toml"
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("plugins folder: %w", err)
		}
		if err := copyFile(filepath.Join(o.plugins, "add.wasm"), filepath.Join(dir, "add.wasm")); err != nil {
			return err
		}
		if err := os.WriteFile(config, fmt.Appendf(nil, "drop_in = \"deny\"\n\n[plugins.add]\npool_size = %d\n", pool), 0o644); err != nil {
			return fmt.Errorf("plugins file: %w", err)
		}
		so := o
		so.env = append(slices.Clone(o.env), fmt.Sprintf("TOOLGATE_MCP_MAX_SESSIONS_PER_USER=%d", sessionCount))
		tg, err := startToolgate(ctx, so, data, dir, config, false)
		if err != nil {
			return err
		}
		token, err := signIn(ctx, tg.public, "alice@example.com")
		if err != nil {
			tg.stop()
			return fmt.Errorf("sign in: %w", err)
		}
		lc := newLoadClient(4 * large)
		var seq atomic.Int64
		r := load(ctx, lc, system{url: tg.public + "/mcp", token: token, pid: tg.cmd.Process.Pid}, 4*large, 0, time.Second, &seq)
		lc.CloseIdleConnections()
		v, rerr := rss(tg.cmd.Process.Pid)
		if pool == small && rerr == nil && r.errs == 0 {
			perK, err := sessionMemory(ctx, tg.public+"/mcp", token, tg.cmd.Process.Pid, v)
			if err != nil {
				tg.stop()
				return err
			}
			res.extras = append(res.extras, extra{fmt.Sprintf("resident memory per 1,000 open sessions (%d stateful 2025-06-18 sessions initialized, idle)", sessionCount), mib(perK), ""})
		}
		tg.stop()
		if r.errs > 0 {
			return fmt.Errorf("warming %d add instances: %d errors (first: %w)", pool, r.errs, r.firstErr)
		}
		if rerr != nil {
			return rerr
		}
		sizes[i] = v
	}
	res.extras = append(res.extras, extra{fmt.Sprintf("resident memory per warm add instance ((pool of %d − pool of %d) / %d, after %d concurrent callers for 1 s)", large, small, large-small, 4*large),
		mib((sizes[1] - sizes[0]) / (large - small)), ""})
	return nil
}

// sessionCount is how many stateful sessions sessionMemory opens.
const sessionCount = 1000

// sessionMemory opens sessionCount stateful sessions (initialize and
// notifications/initialized at protocol 2025-06-18, the revision that gets
// sessions) on the toolgate at url, and returns the growth of its resident
// memory over before, per 1,000 sessions.
func sessionMemory(ctx context.Context, url, token string, pid int, before int64) (int64, error) {
	client := newLoadClient(1)
	defer client.CloseIdleConnections()
	for i := range sessionCount {
		id, err := openSession(ctx, client, url, token, int64(i+1))
		if err != nil {
			return 0, fmt.Errorf("session %d: %w", i+1, err)
		}
		if id == "" {
			return 0, fmt.Errorf("session %d: no Mcp-Session-Id in the initialize answer", i+1)
		}
	}
	after, err := rss(pid)
	if err != nil {
		return 0, err
	}
	return (after - before) * 1000 / sessionCount, nil
}

// goBenchmarks runs the bearer verification and plugin call benchmarks;
// a failure is a warning in the report, not the end of the run.
func goBenchmarks(ctx context.Context, res *results, o options) {
	if lines, err := goBench(ctx, o.root, "go", "./core/auth/", "^BenchmarkVerifyBearerCached$", "-cpu", "1"); err != nil {
		res.warnings = append(res.warnings, err.Error())
	} else {
		for _, l := range lines {
			if ns := l.metrics["ns/op"]; ns > 0 {
				res.extras = append(res.extras, extra{"bearer verification from the cache, one core (" + l.name + ")", fmt.Sprintf("%.0f/s (%.0f ns/op)", 1e9/ns, ns), "≥ 200,000/s"})
			}
		}
	}
	if lines, err := goBench(ctx, o.root, "go", "./core/plugin/", "^BenchmarkCall$", "-benchtime", "1s"); err != nil {
		res.warnings = append(res.warnings, err.Error())
	} else {
		for _, l := range lines {
			v := fmt.Sprintf("%.2f µs/op", l.metrics["ns/op"]/1e3)
			if p50, ok := l.metrics["p50-µs"]; ok {
				v += fmt.Sprintf(", p50 %.2f µs, p99 %.2f µs", p50, l.metrics["p99-µs"])
			}
			res.extras = append(res.extras, extra{"plugin warm call in process: " + l.name, v, ""})
		}
	}
}

// prefixed recognizes a line "<prefix>VALUE" and returns VALUE.
func prefixed(prefix string) func(string) (string, bool) {
	return func(line string) (string, bool) {
		v, ok := strings.CutPrefix(line, prefix)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return "", false
		}
		return v, true
	}
}

// selfPath is this program's executable.
func selfPath() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
