// Package sdktest runs a plugin's tools natively, in ordinary Go unit tests,
// against a fake host: a caller identity, the capabilities the operator would
// grant, an http.Handler answering the plugin's HTTP requests, an in-memory
// key/value store, config values, secrets, and a recorder for logs, progress
// and every host call.
//
// A plugin's test lives in the plugin's package main next to the init that
// registers its tools:
//
//	func TestAdd(t *testing.T) {
//		p := sdktest.New(t, sdktest.Options{})
//		res := p.Call("add", map[string]any{"a": 1, "b": 2})
//		if res.Text() != "3" { t.Errorf("add(1, 2) = %q, want 3", res.Text()) }
//	}
//
// Calls go through the same path as in WebAssembly (the JSON envelope in,
// the JSON result out, the host-function status codes and pending results),
// but with the Go compiler's native code. Running the compiled .wasm against
// the real host is core/plugin's test kit's job.
//
// Harnesses share the process-wide fake host, so calls from tests running in
// parallel are serialised.
package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toolgate/toolgate/sdk"
	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/bridge"
	"github.com/toolgate/toolgate/sdk/internal/hostcall"
)

// Options describe the fake host. The zero value is a caller "user_test"
// without permissions and a host granting everything the manifest declares.
type Options struct {
	// Caller is the identity calls run as, unless a call names another.
	Caller abi.Caller
	// Grants are the capabilities the operator grants. Nil grants exactly
	// what the manifest declares; a host function outside the grants
	// answers StatusNotGranted, as the real host does.
	Grants *abi.Capabilities
	// HTTP answers the plugin's HTTP requests to granted hosts; nil answers
	// every request with StatusFailed. A request with a timeout runs with
	// that deadline on its context; if the deadline passes before the
	// handler returns, the request fails with StatusFailed, as it does on
	// the host.
	HTTP http.Handler
	// Config and Secrets hold the values behind sdk.Config and sdk.Secret.
	Config  map[string]string
	Secrets map[string]string
	// KV is the initial content of the plugin's key/value namespace.
	KV map[string][]byte
	// Tools answers sdk.Tools: the server's tools as the caller sees them.
	// Nil answers an empty list, as the real host does when the gate
	// supplies none.
	Tools []abi.ToolAccess
}

// Plugin is a harness around the plugin compiled into the test binary.
type Plugin struct {
	tb       testing.TB
	opts     Options
	manifest abi.Manifest
	grants   abi.Capabilities
	dispatch func([]byte) []byte

	mu       sync.Mutex
	kv       map[string]kvEntry
	calls    []HostCall
	logs     []LogLine
	progress []ProgressReport
}

type kvEntry struct {
	value []byte
	ttl   time.Duration
}

// HostCall records one host function call the plugin made.
type HostCall struct {
	Func   string     // abi function name, such as "kv_get"
	Arg    string     // the key, name, URL or message it was about
	Status abi.Status // StatusOK or the negative status returned
}

// LogLine is one line the plugin logged.
type LogLine struct {
	Level int32 // abi.LogDebug ... abi.LogError
	Text  string
}

// ProgressReport is one sdk.Progress call.
type ProgressReport struct {
	Done, Total float64
	Message     string
}

// callMu serialises calls across harnesses: the fake host is process-wide.
var callMu sync.Mutex

// New reads the plugin's manifest and returns a harness. It fails tb if the
// plugin declared nothing or its manifest does not decode.
func New(tb testing.TB, opts Options) *Plugin {
	tb.Helper()
	raw, err := sdk.Manifest()
	if err != nil {
		tb.Fatalf("sdktest: %v", err)
	}
	p := &Plugin{tb: tb, opts: opts, dispatch: bridge.NewDispatcher(), kv: map[string]kvEntry{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.manifest); err != nil {
		tb.Fatalf("sdktest: decode manifest: %v", err)
	}
	p.grants = p.manifest.Capabilities
	if opts.Grants != nil {
		p.grants = *opts.Grants
	}
	if p.opts.Caller.UserID == "" {
		p.opts.Caller.UserID = "user_test"
	}
	if p.opts.Caller.Permissions == nil {
		p.opts.Caller.Permissions = []string{}
	}
	for k, v := range opts.KV {
		p.kv[k] = kvEntry{value: slices.Clone(v)}
	}
	return p
}

// Manifest returns the manifest the plugin exports.
func (p *Plugin) Manifest() abi.Manifest { return p.manifest }

// Tool returns the declaration of the named tool.
func (p *Plugin) Tool(name string) (abi.Tool, bool) {
	for _, t := range p.manifest.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return abi.Tool{}, false
}

// Result is the outcome of a call.
type Result struct {
	abi.CallResult
	// Raw is the CallResult JSON the plugin returned.
	Raw json.RawMessage
	// Denied names the missing permissions when the gate would have
	// refused the caller; the tool did not run.
	Denied []string
}

// Text returns the text of all text blocks, joined by newlines.
func (r Result) Text() string {
	var parts []string
	for _, c := range r.Content {
		if c.Type == abi.ContentText {
			parts = append(parts, c.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Call calls the tool as the harness's caller. args is the arguments object:
// a json.RawMessage, []byte or string is sent as is; anything else is
// encoded with encoding/json.
func (p *Plugin) Call(tool string, args any) Result {
	p.tb.Helper()
	return p.CallAs(p.opts.Caller, tool, args)
}

// CallAs calls the tool as caller. Like the gate, it refuses a caller that
// lacks one of the tool's permissions (Result.Denied).
func (p *Plugin) CallAs(caller abi.Caller, tool string, args any) Result {
	p.tb.Helper()
	var raw json.RawMessage
	switch a := args.(type) {
	case json.RawMessage:
		raw = a
	case []byte:
		raw = a
	case string:
		raw = json.RawMessage(a)
	default:
		b, err := json.Marshal(args)
		if err != nil {
			p.tb.Fatalf("sdktest: encode arguments: %v", err)
		}
		raw = b
	}
	if caller.Permissions == nil {
		caller.Permissions = []string{}
	}
	if t, ok := p.Tool(tool); ok {
		var missing []string
		for _, perm := range t.Permissions {
			if !slices.Contains(caller.Permissions, perm) {
				missing = append(missing, perm)
			}
		}
		if missing != nil {
			return Result{Denied: missing}
		}
	}
	in, err := json.Marshal(struct {
		Tool      string          `json:"tool"`
		Arguments json.RawMessage `json:"arguments,omitempty"`
		Caller    abi.Caller      `json:"caller"`
		CallID    string          `json:"call_id"`
	}{tool, raw, caller, "call_test"})
	if err != nil {
		p.tb.Fatalf("sdktest: encode call input: %v", err)
	}
	return p.CallRaw(in)
}

// CallRaw runs a complete CallInput JSON through the plugin, exactly as
// toolgate_call would, and decodes the result. It fails tb if the plugin
// returns something that is not a CallResult.
func (p *Plugin) CallRaw(input []byte) Result {
	p.tb.Helper()
	callMu.Lock()
	restore := hostcall.SetHost(fakeHost{p})
	out := slices.Clone(p.dispatch(input))
	restore()
	callMu.Unlock()
	res := Result{Raw: out}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res.CallResult); err != nil {
		p.tb.Fatalf("sdktest: plugin returned an invalid CallResult %q: %v", out, err)
	}
	return res
}

// HostCalls returns the host functions called so far, in order.
func (p *Plugin) HostCalls() []HostCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Logs returns the lines logged so far.
func (p *Plugin) Logs() []LogLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logs)
}

// Progress returns the progress reports so far.
func (p *Plugin) Progress() []ProgressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.progress)
}

// KV returns a copy of the key/value namespace.
func (p *Plugin) KV() map[string][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string][]byte, len(p.kv))
	for k, e := range p.kv {
		m[k] = slices.Clone(e.value)
	}
	return m
}

// KVTTL returns the expiry a key was stored with (0: none).
func (p *Plugin) KVTTL(key string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kv[key].ttl
}

// fakeHost answers the plugin's host calls for one harness.
type fakeHost struct{ p *Plugin }

var _ hostcall.Host = fakeHost{}

func (h fakeHost) record(fn, arg string, st abi.Status) {
	h.p.calls = append(h.p.calls, HostCall{Func: fn, Arg: arg, Status: st})
}

func (h fakeHost) fail(fn, arg string, st abi.Status, format string, args ...any) ([]byte, abi.Status) {
	h.record(fn, arg, st)
	return []byte(fmt.Sprintf(format, args...)), st
}

func (h fakeHost) ok(fn, arg string, res []byte) ([]byte, abi.Status) {
	h.record(fn, arg, abi.StatusOK)
	return res, abi.StatusOK
}

func (h fakeHost) Log(level int32, msg []byte) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	text := string(msg)
	if len(text) > abi.MaxLogLineBytes {
		text = text[:abi.MaxLogLineBytes]
	}
	h.p.logs = append(h.p.logs, LogLine{Level: level, Text: text})
	h.record(abi.FuncLog, text, abi.StatusOK)
}

func (h fakeHost) HTTPRequest(in []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	const fn = abi.FuncHTTPRequest
	var req abi.HTTPRequest
	if err := json.Unmarshal(in, &req); err != nil {
		return h.fail(fn, "", abi.StatusInvalidArgument, "decode request: %v", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return h.fail(fn, req.URL, abi.StatusInvalidArgument, "want an absolute http or https URL, got %q", req.URL)
	}
	if !slices.Contains(h.p.grants.HTTP, u.Host) && !slices.Contains(h.p.grants.HTTP, u.Hostname()) {
		return h.fail(fn, req.URL, abi.StatusNotGranted, "host %q is not granted", u.Host)
	}
	if len(req.Body) > abi.MaxHTTPBodyBytes {
		return h.fail(fn, req.URL, abi.StatusTooLarge, "request body over %d bytes", abi.MaxHTTPBodyBytes)
	}
	if h.p.opts.HTTP == nil {
		return h.fail(fn, req.URL, abi.StatusFailed, "no HTTP handler in sdktest.Options")
	}
	hr := httptest.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
	for k, vs := range req.Headers {
		hr.Header[http.CanonicalHeaderKey(k)] = vs
	}
	// The request's timeout becomes the handler's request context
	// deadline; a handler still running at the deadline (it should watch
	// r.Context()) fails the call as the host's timeout does.
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if req.TimeoutMS > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
	}
	defer cancel()
	hr = hr.WithContext(ctx)
	rec := httptest.NewRecorder()
	h.p.mu.Unlock()
	h.p.opts.HTTP.ServeHTTP(rec, hr)
	h.p.mu.Lock()
	if err := ctx.Err(); err != nil {
		return h.fail(fn, req.URL, abi.StatusFailed, "http request failed: %v", err)
	}
	if rec.Body.Len() > abi.MaxHTTPBodyBytes {
		return h.fail(fn, req.URL, abi.StatusTooLarge, "response body over %d bytes", abi.MaxHTTPBodyBytes)
	}
	out, err := json.Marshal(abi.HTTPResponse{Status: rec.Code, Headers: rec.Header(), Body: rec.Body.Bytes()})
	if err != nil {
		return h.fail(fn, req.URL, abi.StatusFailed, "encode response: %v", err)
	}
	return h.ok(fn, req.URL, out)
}

func (h fakeHost) kvCheck(fn string, key []byte) ([]byte, abi.Status, bool) {
	if !h.p.grants.KV {
		res, st := h.fail(fn, string(key), abi.StatusNotGranted, "kv is not granted")
		return res, st, false
	}
	if msg := badKey(key); msg != "" {
		res, st := h.fail(fn, string(key), abi.StatusInvalidArgument, "invalid key %q: %s", key, msg)
		return res, st, false
	}
	return nil, 0, true
}

// badKey applies the host's key rule: 1 to 512 bytes of printable ASCII,
// without "..", not starting with "/".
func badKey(key []byte) string {
	switch {
	case len(key) == 0 || len(key) > maxKeyLen:
		return "must be 1 to 512 bytes"
	case key[0] == '/':
		return "must not start with /"
	case bytes.Contains(key, []byte("..")):
		return `must not contain ".."`
	}
	for _, c := range key {
		if c < 0x20 || c > 0x7e {
			return "must be printable ASCII"
		}
	}
	return ""
}

const maxKeyLen = 512

func (h fakeHost) KVGet(key []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if res, st, ok := h.kvCheck(abi.FuncKVGet, key); !ok {
		return res, st
	}
	e, ok := h.p.kv[string(key)]
	if !ok {
		return h.fail(abi.FuncKVGet, string(key), abi.StatusNotFound, "no key %q", key)
	}
	v := e.value
	if v == nil {
		v = []byte{}
	}
	return h.ok(abi.FuncKVGet, string(key), v)
}

func (h fakeHost) KVPut(key, val []byte, ttlMS int64) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if res, st, ok := h.kvCheck(abi.FuncKVPut, key); !ok {
		return res, st
	}
	if ttlMS < 0 {
		return h.fail(abi.FuncKVPut, string(key), abi.StatusInvalidArgument, "negative ttl")
	}
	h.p.kv[string(key)] = kvEntry{value: slices.Clone(val), ttl: time.Duration(ttlMS) * time.Millisecond}
	return h.ok(abi.FuncKVPut, string(key), nil)
}

func (h fakeHost) KVDelete(key []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if res, st, ok := h.kvCheck(abi.FuncKVDelete, key); !ok {
		return res, st
	}
	delete(h.p.kv, string(key))
	return h.ok(abi.FuncKVDelete, string(key), nil)
}

// maxListLimit is the host's page size when the plugin asks for 0 or more.
const maxListLimit = 1000

func (h fakeHost) KVList(in []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	const fn = abi.FuncKVList
	if !h.p.grants.KV {
		return h.fail(fn, "", abi.StatusNotGranted, "kv is not granted")
	}
	var req abi.KVListRequest
	if err := json.Unmarshal(in, &req); err != nil {
		return h.fail(fn, "", abi.StatusInvalidArgument, "decode request: %v", err)
	}
	limit := req.Limit
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	keys := []string{}
	for k := range h.p.kv {
		if strings.HasPrefix(k, req.Prefix) && k > req.After {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out, err := json.Marshal(abi.KVListResponse{Keys: keys})
	if err != nil {
		return h.fail(fn, req.Prefix, abi.StatusFailed, "encode response: %v", err)
	}
	return h.ok(fn, req.Prefix, out)
}

func (h fakeHost) named(fn string, declared []string, values map[string]string, name []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	n := string(name)
	if !slices.Contains(declared, n) {
		return h.fail(fn, n, abi.StatusNotGranted, "%q is not granted", n)
	}
	v, ok := values[n]
	if !ok {
		return h.fail(fn, n, abi.StatusNotFound, "%q is not set", n)
	}
	return h.ok(fn, n, []byte(v))
}

func (h fakeHost) ConfigGet(name []byte) ([]byte, abi.Status) {
	return h.named(abi.FuncConfigGet, h.p.grants.Config, h.p.opts.Config, name)
}

func (h fakeHost) SecretGet(name []byte) ([]byte, abi.Status) {
	return h.named(abi.FuncSecretGet, h.p.grants.Secrets, h.p.opts.Secrets, name)
}

func (h fakeHost) Progress(done, total float64, msg []byte) ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if !h.p.grants.Progress {
		return h.fail(abi.FuncProgress, string(msg), abi.StatusNotGranted, "progress is not granted")
	}
	h.p.progress = append(h.p.progress, ProgressReport{Done: done, Total: total, Message: string(msg)})
	return h.ok(abi.FuncProgress, string(msg), nil)
}

func (h fakeHost) Tools() ([]byte, abi.Status) {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	if !h.p.grants.Tools {
		return h.fail(abi.FuncTools, "", abi.StatusNotGranted, "tools is not granted")
	}
	tools := h.p.opts.Tools
	if tools == nil {
		tools = []abi.ToolAccess{}
	}
	out, err := json.Marshal(abi.ToolsResponse{Tools: tools})
	if err != nil {
		return h.fail(abi.FuncTools, "", abi.StatusFailed, "encode response: %v", err)
	}
	return h.ok(abi.FuncTools, "", out)
}
