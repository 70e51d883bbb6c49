package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/toolgate/toolgate/sdk/abi"
)

// echoAndFaulty loads the echo plugin from the drop-in folder and the
// faulty one from plugins.toml with all its grants.
func echoAndFaulty(t *testing.T, tune func(*PluginEntry), mutate func(*Config)) *testHost {
	t.Helper()
	dropIn := t.TempDir()
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
	fe := faultyEntry(t)
	if tune != nil {
		tune(&fe)
	}
	pf := &PluginsFile{Plugins: map[string]PluginEntry{"faulty": fe}}
	return mustTestHost(t, pf, dropIn, func(c *Config) {
		c.KV = &memKV{}
		c.LookupEnv = func(string) (string, bool) { return "", false }
		if mutate != nil {
			mutate(c)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, h *testHost, tool, args string) (abi.CallResult, error) {
	t.Helper()
	return h.Call(context.Background(), tool, json.RawMessage(args), alice, CallOptions{CallID: "c1"})
}

func mustCall(t *testing.T, h *testHost, tool, args, want string) {
	t.Helper()
	res, err := call(t, h, tool, args)
	if err != nil {
		t.Fatalf("%s(%s): %v", tool, args, err)
	}
	if got := text(res); got != want {
		t.Fatalf("%s(%s) = %q, want %q", tool, args, got, want)
	}
}

func TestLoadAndCall(t *testing.T) {
	h := echoAndFaulty(t, func(e *PluginEntry) {
		perms := []string{"admin"}
		e.Tools = map[string]ToolEntry{"ok": {Permissions: &perms, Roles: []string{"admin", "member"}, Timeout: Duration(time.Second)}}
	}, nil)
	mustCall(t, h, "add", `{"a":2,"b":40}`, "42")
	mustCall(t, h, "echo", `{"x":1}`, `{"x":1}`)
	mustCall(t, h, "ok", `{}`, "ok user_alice")

	snap := h.Tools()
	if len(snap.Plugins) != 2 || snap.Plugins[0].Name != "echo" || snap.Plugins[1].Name != "faulty" {
		t.Fatalf("plugins = %+v", snap.Plugins)
	}
	ok, found := snap.Tool("ok")
	if !found || ok.Plugin != "faulty" {
		t.Fatalf("Tool(ok) = %+v, %v", ok, found)
	}
	if fmt.Sprint(ok.Rules.Permissions, ok.Rules.Roles) != "[admin] [admin member]" {
		t.Errorf("rules = %+v", ok.Rules)
	}
	if ok.Limits.Timeout != time.Second || ok.Limits.Memory != DefaultMemory || ok.Limits.MaxOutput != DefaultMaxOutput {
		t.Errorf("limits = %+v", ok.Limits)
	}
	add, _ := snap.Tool("add")
	if add.Limits.Timeout != DefaultTimeout || add.Rules.Permissions != nil {
		t.Errorf("add = %+v", add)
	}
	if !h.Ready() {
		t.Error("not ready")
	}
	if got := metricValue(h.metrics.calls.WithLabelValues("echo", "add")); got != 1 {
		t.Errorf("calls metric = %v, want 1", got)
	}
}

func TestCallFaults(t *testing.T) {
	h := echoAndFaulty(t, func(e *PluginEntry) {
		e.Tools = map[string]ToolEntry{
			"loop": {Timeout: Duration(300 * time.Millisecond)},
			"big":  {MaxOutput: 1 << 20},
			"grow": {Memory: 16 << 20},
		}
		e.Memory = 48 << 20
	}, nil)
	tests := []struct {
		tool, args string
		kind       ErrorKind
		msg        string
	}{
		{"loop", `{}`, ErrKindTimeout, `plugin "faulty" tool "loop": the call did not finish within 300ms`},
		{"bomb", `{}`, ErrKindMemory, `plugin "faulty" tool "bomb": the plugin ran out of memory (limit 48 MiB)`},
		{"trap", `{}`, ErrKindTrap, `(panic: boom`},
		{"garbage", `{}`, ErrKindBadOutput, `the result is not a valid call result: invalid character 'h'`},
		{"badptr", `{}`, ErrKindBadOutput, `the result pointer 0xfff00000+1024 is outside the plugin's memory`},
		{"big", `{"n":2000000}`, ErrKindOutputTooLarge, `bytes, over the limit of 1048576 bytes`},
		{"grow", `{"n":20}`, ErrKindMemory, `over its limit of 16 MiB`},
		{"nosuch", `{}`, ErrKindUnknownTool, `tool "nosuch": no loaded plugin serves this tool`},
		{"ok", `{"a":`, ErrKindBadInput, `plugin "faulty" tool "ok": the arguments are not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			_, err := call(t, h, tt.tool, tt.args)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if pe.Kind != tt.kind || !strings.Contains(pe.Error(), tt.msg) {
				t.Fatalf("err = %q (kind %s), want kind %s containing %q", pe.Error(), pe.Kind, tt.kind, tt.msg)
			}
			// Other plugins keep answering; the same plugin recovers.
			mustCall(t, h, "add", `{"a":1,"b":1}`, "2")
			mustCall(t, h, "ok", `{}`, "ok user_alice")
			if got := metricValue(h.metrics.errors.WithLabelValues(pe.Plugin, tt.tool, string(tt.kind))); pe.Plugin != "" && got != 1 {
				t.Errorf("error metric = %v, want 1", got)
			}
		})
	}
}

func TestGuestError(t *testing.T) {
	h := echoAndFaulty(t, nil, nil)
	_, err := call(t, h, "add", `{"a":"x"}`)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != ErrKindGuest || pe.Code != abi.ErrInvalidArguments {
		t.Fatalf("err = %v", err)
	}
	mustCall(t, h, "add", `{"a":1,"b":2}`, "3")
}

func TestLoadRefused(t *testing.T) {
	echo := testWasm(t, "echo")
	faulty := testWasm(t, "faulty")
	full := faultyEntry(t)
	noKV := full
	noKV.KV = false
	noSecret := full
	noSecret.Secrets = nil
	wrongTool := PluginEntry{Path: echo, Tools: map[string]ToolEntry{"nope": {}}}
	tests := []struct {
		name   string
		dropIn []string
		pf     map[string]PluginEntry
		kv     bool
		want   string
	}{
		{name: "wrong abi", dropIn: []string{"badabi"},
			want: `plugin speaks ABI version 99, but this host speaks ABI version 1`},
		{name: "missing export", dropIn: []string{"noexports"},
			want: `missing export "toolgate_call" (i32, i32) -> i64`},
		{name: "enormous manifest", dropIn: []string{"bigmanifest"},
			want: `bytes, over the 1048576 byte limit`},
		{name: "ungranted http", dropIn: []string{"faulty"},
			want: `plugin "faulty" (` + "%DROPIN%/faulty.wasm" + `) asks for http host "127.0.0.1", which is not granted; add  http = ["127.0.0.1"]  under [plugins.faulty] in plugins.toml`},
		{name: "ungranted kv", pf: map[string]PluginEntry{"faulty": noKV}, kv: true,
			want: `plugin "faulty" (` + faulty + `) asks for the kv store, which is not granted; add  kv = true  under [plugins.faulty] in plugins.toml`},
		{name: "ungranted secret", pf: map[string]PluginEntry{"faulty": noSecret}, kv: true,
			want: `asks for secret "token", which is not granted; add  secrets = { token = "ENV_VAR_NAME" }  under [plugins.faulty]`},
		{name: "kv without store", pf: map[string]PluginEntry{"faulty": full},
			want: `plugins.toml grants kv, but the host has no key/value store`},
		{name: "sha256 mismatch", pf: map[string]PluginEntry{"echo": {Path: echo, SHA256: strings.Repeat("0", 64)}},
			want: `but plugins.toml pins 0000000000000000000000000000000000000000000000000000000000000000`},
		{name: "duplicate tool", dropIn: []string{"echo"}, pf: map[string]PluginEntry{"echo-copy": {Path: echo}},
			want: `tool "echo" is served by two plugins: "echo" (%DROPIN%/echo.wasm) and "echo-copy" (` + echo + `)`},
		{name: "rule for unknown tool", pf: map[string]PluginEntry{"echo": wrongTool},
			want: `plugins.toml has [plugins.echo.tools.nope], but the plugin has no tool "nope"`},
		{name: "missing file", pf: map[string]PluginEntry{"ghost": {}},
			want: `plugin "ghost" (%DROPIN%/ghost.wasm): read: open`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropIn := t.TempDir()
			for _, n := range tt.dropIn {
				copyFile(t, testWasm(t, n), filepath.Join(dropIn, n+".wasm"))
			}
			pf := &PluginsFile{Plugins: tt.pf}
			_, err := newTestHost(t, pf, dropIn, func(c *Config) {
				if tt.kv {
					c.KV = &memKV{}
				}
			})
			want := strings.ReplaceAll(tt.want, "%DROPIN%", dropIn)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("New error = %v\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect-out":
			http.Redirect(w, r, "http://example.invalid/", http.StatusFound)
		case "/redirect-in":
			http.Redirect(w, r, srvURL+"/hello", http.StatusFound)
		default:
			io.WriteString(w, "hi from "+r.URL.Path)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	grant := srv.URL // http://127.0.0.1:PORT

	t.Run("private allowed", func(t *testing.T) {
		h := echoAndFaulty(t, func(e *PluginEntry) {
			// example.com is granted but not in the manifest: not usable.
			*e = faultyEntry(t, grant, "example.com")
			e.AllowPrivateHosts = true
		}, nil)
		mustCall(t, h, "http", `{"url":"`+srv.URL+`/hello"}`, "200 hi from /hello")
		mustCall(t, h, "http", `{"url":"`+srv.URL+`/redirect-in"}`, "200 hi from /hello")
		res, err := call(t, h, "http", `{"url":"`+srv.URL+`/redirect-out"}`)
		if err != nil || !strings.Contains(text(res), "status -5: http request failed") || !strings.Contains(text(res), "redirect to http://example.invalid is not granted") {
			t.Fatalf("redirect out = %q, %v", text(res), err)
		}
		res, err = call(t, h, "http", `{"url":"https://example.com/"}`)
		if err != nil || text(res) != `error: status -1: http to https://example.com is not granted to plugin "faulty"` {
			t.Fatalf("ungranted host = %q, %v", text(res), err)
		}
		// Same host, other scheme or port: not granted either.
		res, _ = call(t, h, "http", `{"url":"https://`+strings.TrimPrefix(srv.URL, "http://")+`/"}`)
		if !strings.Contains(text(res), "status -1") {
			t.Fatalf("other scheme = %q", text(res))
		}
	})
	t.Run("private refused", func(t *testing.T) {
		h := echoAndFaulty(t, func(e *PluginEntry) { *e = faultyEntry(t, grant) }, nil)
		res, err := call(t, h, "http", `{"url":"`+srv.URL+`/hello"}`)
		if err != nil || !strings.Contains(text(res), "status -5: http request failed") ||
			!strings.Contains(text(res), "address is private, loopback, link-local or special-use and allow_private_hosts is not set") {
			t.Fatalf("loopback = %q, %v", text(res), err)
		}
	})
}

func TestKVConfigSecretsProgressLog(t *testing.T) {
	kv := &memKV{}
	h := echoAndFaulty(t, func(e *PluginEntry) {
		// Granted but not declared in the manifest: still not usable.
		e.Config["undeclared"] = "x"
		e.Secrets["undeclared"] = "TOOLGATE_TEST_TOKEN"
	}, func(c *Config) {
		c.KV = kv
		c.LookupEnv = func(name string) (string, bool) {
			if name == "TOOLGATE_TEST_TOKEN" {
				return "s3cr3t-value", true
			}
			return "", false
		}
	})
	mustCall(t, h, "kv", `{"key":"k1","value":"v1"}`, "v1")
	mustCall(t, h, "kv", `{"key":"k1"}`, "v1")
	if v, err := kv.KVGet(context.Background(), "faulty", "k1"); err != nil || string(v) != "v1" {
		t.Fatalf("kv namespace: %q, %v", v, err)
	}
	mustCall(t, h, "kv", `{"key":"missing"}`, "error: status -2: no such key")
	mustCall(t, h, "kv", `{"key":"../x"}`, "error: status -3: invalid key: store: invalid argument: key must not contain \"..\"")

	mustCall(t, h, "config", `{"name":"greeting"}`, "hello")
	mustCall(t, h, "config", `{"name":"other"}`, `error: status -1: config value "other" is not granted to plugin "faulty"`)
	mustCall(t, h, "config", `{"name":"undeclared"}`, `error: status -1: config value "undeclared" is not granted to plugin "faulty"`)
	mustCall(t, h, "secret", `{"name":"undeclared"}`, `error: status -1: secret "undeclared" is not granted to plugin "faulty"`)
	// Outside toolgate_call, host functions other than log fail.
	mustCall(t, h, "manifeststatus", `{}`, "-5")
	mustCall(t, h, "secret", `{"name":"token"}`, "s3cr3t-value")
	mustCall(t, h, "secret", `{"name":"nope"}`, `error: status -1: secret "nope" is not granted to plugin "faulty"`)

	var got []Progress
	res, err := h.Call(context.Background(), "slow", json.RawMessage(`{"ms":1}`), alice, CallOptions{Progress: func(p Progress) { got = append(got, p) }})
	if err != nil || text(res) != "slept" {
		t.Fatalf("slow: %q, %v", text(res), err)
	}
	if len(got) != 1 || got[0] != (Progress{Progress: 0, Total: 1, Message: "sleeping"}) {
		t.Fatalf("progress = %+v", got)
	}

	mustCall(t, h, "log", `{"n":20000}`, "logged")
	logs := h.logs.String()
	if strings.Contains(logs, "s3cr3t-value") {
		t.Error("the secret's value reached the log")
	}
	if !strings.Contains(logs, "truncated=true") || !strings.Contains(logs, strings.Repeat("l", abi.MaxLogLineBytes)) || strings.Contains(logs, strings.Repeat("l", abi.MaxLogLineBytes+1)) {
		t.Error("log line not capped at abi.MaxLogLineBytes")
	}
	if !strings.Contains(logs, "dropped_bytes=") || !strings.Contains(logs, strings.Repeat("o", 1000)) {
		t.Error("stdout not captured and capped")
	}
}

func TestSecretUnset(t *testing.T) {
	h := echoAndFaulty(t, nil, nil)
	mustCall(t, h, "secret", `{"name":"token"}`, `error: status -2: secret "token" is not set (the operator has not set environment variable TOOLGATE_TEST_TOKEN)`)
}

func TestRealClockAndEntropy(t *testing.T) {
	h := echoAndFaulty(t, func(e *PluginEntry) { e.Isolation = IsolationPerCall }, nil)
	seen := map[string]bool{}
	for range 2 {
		res, err := call(t, h, "entropy", `{"ms":50}`)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(text(res))
		unix, _ := strconv.ParseInt(f[0], 10, 64)
		if d := time.Now().Unix() - unix; d < 0 || d > 60 {
			t.Errorf("guest clock says %d, host %d", unix, time.Now().Unix())
		}
		if ms, _ := strconv.Atoi(f[2]); ms < 50 {
			t.Errorf("guest slept %d ms, want >= 50 (real nanosleep)", ms)
		}
		if seen[f[1]] {
			t.Errorf("two fresh instances returned the same random bytes %s", f[1])
		}
		seen[f[1]] = true
	}
	if got := metricValue(h.metrics.instances.WithLabelValues("faulty")); got != 0 {
		t.Errorf("per-call isolation left %v live instances", got)
	}
}

func TestRecycleAboveHighWater(t *testing.T) {
	h := echoAndFaulty(t, func(e *PluginEntry) { e.Memory = 32 << 20; e.PoolSize = 1 }, nil)
	gauge := h.metrics.instances.WithLabelValues("faulty")
	if got := metricValue(gauge); got != 1 {
		t.Fatalf("instances after load = %v, want 1 (eager instance)", got)
	}
	mustCall(t, h, "ok", `{}`, "ok user_alice")
	if got := metricValue(gauge); got != 1 {
		t.Fatalf("instances after a small call = %v, want 1", got)
	}
	mustCall(t, h, "grow", `{"n":20}`, "grew")
	// The grown instance was closed and a fresh one started in its place.
	h.cur.Load().plugins[1].bg.Wait()
	if got := metricValue(gauge); got != 1 {
		t.Fatalf("instances after recycling = %v, want 1", got)
	}
	mustCall(t, h, "ok", `{}`, "ok user_alice")
	if p := h.cur.Load().plugins[1]; p.src.name != "faulty" {
		t.Fatalf("plugin = %s", p.src.name)
	}
}

func TestCancel(t *testing.T) {
	h := echoAndFaulty(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := h.Call(ctx, "slow", json.RawMessage(`{"ms":600000}`), alice, CallOptions{Progress: func(Progress) { once.Do(func() { close(started) }) }})
		errc <- err
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if KindOf(err) != ErrKindCancelled || !strings.Contains(err.Error(), "the call was cancelled") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the request did not stop the sleeping guest")
	}
	mustCall(t, h, "ok", `{}`, "ok user_alice")
}

func TestInspect(t *testing.T) {
	ctx := context.Background()
	info, err := Inspect(ctx, testWasm(t, "echo"))
	if err != nil {
		t.Fatal(err)
	}
	if info.ABIVersion != abi.Version || info.Manifest.Name != "echo" || len(info.SHA256) != 64 || len(info.Manifest.Tools) != 3 || len(info.Problems) != 0 {
		t.Fatalf("info = %+v", info)
	}
	if _, err := json.Marshal(info); err != nil {
		t.Fatal(err)
	}
	_, err = Inspect(ctx, testWasm(t, "badabi"))
	if err == nil || !strings.Contains(err.Error(), "plugin speaks ABI version 99, but this host speaks ABI version 1") {
		t.Fatalf("badabi: %v", err)
	}
}

// metricValue reads a counter's or gauge's current value.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func TestMetricsRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	dropIn := t.TempDir()
	copyFile(t, testWasm(t, "echo"), filepath.Join(dropIn, "echo.wasm"))
	h := mustTestHost(t, nil, dropIn, func(c *Config) { c.Registerer = reg })
	// A second host on the same registry shares the collectors.
	mustTestHost(t, nil, dropIn, func(c *Config) { c.Registerer = reg })
	mustCall(t, h, "add", `{"a":1,"b":1}`, "2")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{
		"toolgate_plugin_calls_total", "toolgate_plugin_call_duration_seconds", "toolgate_plugin_instances",
		"toolgate_plugin_compile_seconds", "toolgate_plugin_load_seconds",
	} {
		if !got[name] {
			t.Errorf("metric %s not registered (have %v)", name, got)
		}
	}
}

func TestCloseWaitsForCalls(t *testing.T) {
	h := echoAndFaulty(t, nil, nil)
	started := make(chan struct{})
	var once sync.Once
	result := make(chan string, 1)
	go func() {
		res, err := h.Call(context.Background(), "slow", json.RawMessage(`{"ms":300}`), alice,
			CallOptions{Progress: func(Progress) { once.Do(func() { close(started) }) }})
		if err != nil {
			result <- err.Error()
			return
		}
		result <- text(res)
	}()
	<-started
	short, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := h.Close(short); err == nil || !strings.Contains(err.Error(), "calls still running") {
		t.Fatalf("Close with a short deadline = %v", err)
	}
	if got := <-result; got != "slept" {
		t.Fatalf("call in flight during Close = %q", got)
	}
	if h.Ready() {
		t.Error("Ready after Close")
	}
	if _, err := call(t, h, "ok", `{}`); KindOf(err) != ErrKindUnavailable {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestSources(t *testing.T) {
	echo := testWasm(t, "echo")
	b, err := os.ReadFile(echo)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	pin := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		dropIn  map[string]string // file name -> testdata plugin
		pf      PluginsFile
		plugins string // "name:file-base ..." of the loaded set
	}{
		{name: "drop-in allowed", dropIn: map[string]string{"echo.wasm": "echo"},
			plugins: "echo:echo.wasm"},
		{name: "drop-in denied", dropIn: map[string]string{"echo.wasm": "echo"}, pf: PluginsFile{DropIn: DropInDeny},
			plugins: ""},
		{name: "denied but listed", dropIn: map[string]string{"echo.wasm": "echo"},
			pf:      PluginsFile{DropIn: DropInDeny, Plugins: map[string]PluginEntry{"echo": {SHA256: pin}}},
			plugins: "echo:echo.wasm"},
		{name: "explicit path wins over drop-in", dropIn: map[string]string{"echo.wasm": "badabi"},
			pf:      PluginsFile{Plugins: map[string]PluginEntry{"echo": {Path: echo}}},
			plugins: "echo:echo.wasm"},
		{name: "other files ignored", dropIn: map[string]string{"echo.wasm": "echo", "notes.txt": "badabi", "echo.wasm.part": "badabi"},
			plugins: "echo:echo.wasm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for file, src := range tt.dropIn {
				copyFile(t, testWasm(t, src), filepath.Join(dir, file))
			}
			h := mustTestHost(t, &tt.pf, dir, nil)
			var got []string
			for _, p := range h.Tools().Plugins {
				got = append(got, p.Name+":"+filepath.Base(p.File))
				if p.SHA256 != pin {
					t.Errorf("sha256 = %s, want %s", p.SHA256, pin)
				}
			}
			if strings.Join(got, " ") != tt.plugins {
				t.Fatalf("plugins = %q, want %q", got, tt.plugins)
			}
		})
	}
}

// TestSDKAddPlugin loads plugins/add, built with the guest SDK, to check
// that the SDK and this host agree on the ABI.
func TestSDKAddPlugin(t *testing.T) {
	wasm, err := tryBuildWasm("add", "../../plugins/add")
	if err != nil {
		t.Skipf("plugins/add does not build (the SDK is developed separately): %v", err)
	}
	dropIn := t.TempDir()
	copyFile(t, wasm, filepath.Join(dropIn, "add.wasm"))
	h := mustTestHost(t, nil, dropIn, nil)
	res, err := call(t, h, "add", `{"a":2,"b":3}`)
	if err != nil {
		t.Fatal(err)
	}
	if text(res) != "5" || string(res.Structured) != `{"sum":5}` {
		t.Fatalf("add = %q, structured %s", text(res), res.Structured)
	}
}
