package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
	f64 = api.ValueTypeF64
)

// instantiateHostModule defines the "toolgate/v1" host functions for one
// plugin's runtime. Grants (what the manifest asks for and plugins.toml
// grants) are checked on every call: anything else answers
// StatusNotGranted.
func (p *loadedPlugin) instantiateHostModule(ctx context.Context) error {
	b := p.rt.NewHostModuleBuilder(abi.HostModule)
	def := func(name string, fn api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(name)
	}
	def(abi.FuncLog, p.hostLog, []api.ValueType{i32, i32, i32}, nil)
	def(abi.FuncResultRead, hostResultRead, []api.ValueType{i32, i32}, []api.ValueType{i32})
	def(abi.FuncHTTPRequest, p.hostHTTP, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncKVGet, p.hostKVGet, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncKVPut, p.hostKVPut, []api.ValueType{i32, i32, i32, i32, i64}, []api.ValueType{i64})
	def(abi.FuncKVDelete, p.hostKVDelete, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncKVList, p.hostKVList, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncConfigGet, p.hostConfigGet, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncSecretGet, p.hostSecretGet, []api.ValueType{i32, i32}, []api.ValueType{i64})
	def(abi.FuncProgress, p.hostProgress, []api.ValueType{f64, f64, i32, i32}, []api.ValueType{i64})
	def(abi.FuncTools, p.hostTools, nil, []api.ValueType{i64})
	_, err := b.Instantiate(ctx)
	return err
}

// ok sets a pending result and returns its length as the status.
func (s *callState) ok(stack []uint64, result []byte) {
	s.pending = result
	stack[0] = uint64(int64(len(result)))
}

// fail sets a pending error message and returns the negative status.
func (s *callState) fail(stack []uint64, status abi.Status, format string, args ...any) {
	s.pending = fmt.Appendf(nil, format, args...)
	stack[0] = statusWord(status)
}

// statusWord encodes a status as the i64 result word.
func statusWord(s abi.Status) uint64 { return uint64(s) }

// read copies n bytes at ptr out of guest memory.
func read(mod api.Module, ptr, n uint32) ([]byte, bool) {
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return nil, false
	}
	return bytes.Clone(b), true
}

// enter returns the running call's state. Outside toolgate_call (from
// _initialize or toolgate_manifest) it answers StatusFailed and returns nil.
func enter(ctx context.Context, stack []uint64) *callState {
	st := stateFrom(ctx)
	if st == nil {
		stack[0] = statusWord(abi.StatusFailed)
		return nil
	}
	if !st.inCall {
		st.fail(stack, abi.StatusFailed, "host functions other than log and result_read work only during %s", abi.ExportCall)
		return nil
	}
	return st
}

func (p *loadedPlugin) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := int32(uint32(stack[0])), uint32(stack[1]), uint32(stack[2])
	st := stateFrom(ctx)
	limit := p.h.cfg.LogLimit
	if st != nil {
		if st.logBytes >= limit {
			return
		}
		st.logBytes += int(min(n, abi.MaxLogLineBytes))
	}
	truncated := n > abi.MaxLogLineBytes
	msg, ok := mod.Memory().Read(ptr, min(n, abi.MaxLogLineBytes))
	if !ok {
		return
	}
	lvl := slog.LevelInfo
	switch {
	case level <= abi.LogDebug:
		lvl = slog.LevelDebug
	case level == abi.LogWarn:
		lvl = slog.LevelWarn
	case level >= abi.LogError:
		lvl = slog.LevelError
	}
	attrs := []any{}
	if st != nil {
		attrs = append(attrs, "tool", st.tool)
		if st.callID != "" {
			attrs = append(attrs, "call_id", st.callID)
		}
		if st.logBytes >= limit {
			attrs = append(attrs, "log_limit_reached", true)
		}
	}
	if truncated {
		attrs = append(attrs, "truncated", true)
	}
	p.log.Log(ctx, lvl, string(msg), attrs...)
}

func hostResultRead(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, limit := uint32(stack[0]), uint32(stack[1])
	st := stateFrom(ctx)
	if st == nil || st.pending == nil {
		stack[0] = 0
		return
	}
	n := uint32(len(st.pending))
	if n <= limit && (n == 0 || mod.Memory().Write(ptr, st.pending)) {
		st.pending = nil
	}
	stack[0] = uint64(n)
}

func (p *loadedPlugin) hostHTTP(ctx context.Context, mod api.Module, stack []uint64) {
	st := enter(ctx, stack)
	if st == nil {
		return
	}
	if p.httpClient == nil {
		st.fail(stack, abi.StatusNotGranted, "http is not granted to plugin %q", p.src.name)
		return
	}
	n := uint32(stack[1])
	if n > abi.MaxHTTPBodyBytes*2 {
		st.fail(stack, abi.StatusTooLarge, "request is %d bytes, over the limit", n)
		return
	}
	raw, ok := read(mod, uint32(stack[0]), n)
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "request pointer outside memory")
		return
	}
	var req abi.HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		st.fail(stack, abi.StatusInvalidArgument, "request is not a valid HTTPRequest: %v", err)
		return
	}
	if len(req.Body) > abi.MaxHTTPBodyBytes {
		st.fail(stack, abi.StatusTooLarge, "request body is %d bytes, over the %d byte limit", len(req.Body), abi.MaxHTTPBodyBytes)
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		st.fail(stack, abi.StatusInvalidArgument, "url %q is not an absolute http(s) URL without credentials", req.URL)
		return
	}
	if _, ok := grantFor(u, p.grants.http); !ok {
		st.fail(stack, abi.StatusNotGranted, "http to %s://%s is not granted to plugin %q", u.Scheme, u.Host, p.src.name)
		return
	}
	timeout := p.h.cfg.HTTPTimeout
	if req.TimeoutMS > 0 {
		timeout = min(timeout, time.Duration(req.TimeoutMS)*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(st.ctx, timeout)
	defer cancel()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hreq, err := http.NewRequestWithContext(rctx, method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		st.fail(stack, abi.StatusInvalidArgument, "bad request: %v", err)
		return
	}
	for k, vs := range req.Headers {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	resp, err := p.httpClient.Do(hreq)
	if err != nil {
		if st.ctx.Err() != nil {
			st.fail(stack, abi.StatusCancelled, "the call's deadline passed or it was cancelled")
			return
		}
		st.fail(stack, abi.StatusFailed, "http request failed: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, abi.MaxHTTPBodyBytes+1))
	if err != nil {
		st.fail(stack, abi.StatusFailed, "reading the response failed: %v", err)
		return
	}
	if len(body) > abi.MaxHTTPBodyBytes {
		st.fail(stack, abi.StatusTooLarge, "response body is over the %d byte limit", abi.MaxHTTPBodyBytes)
		return
	}
	out, err := json.Marshal(abi.HTTPResponse{Status: resp.StatusCode, Headers: resp.Header, Body: body})
	if err != nil {
		st.fail(stack, abi.StatusFailed, "encoding the response failed: %v", err)
		return
	}
	st.ok(stack, out)
}

// kvCheck answers for a kv call that is not granted and returns the state
// otherwise.
func (p *loadedPlugin) kvCheck(ctx context.Context, stack []uint64) *callState {
	st := enter(ctx, stack)
	if st == nil {
		return nil
	}
	if !p.grants.kv || p.h.cfg.KV == nil {
		st.fail(stack, abi.StatusNotGranted, "kv is not granted to plugin %q", p.src.name)
		return nil
	}
	return st
}

// kvFailed maps a store error to a status; store internals are logged, not
// shown to the guest.
func (p *loadedPlugin) kvFailed(st *callState, stack []uint64, op string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		st.fail(stack, abi.StatusNotFound, "no such key")
	case errors.Is(err, store.ErrInvalid):
		st.fail(stack, abi.StatusInvalidArgument, "%s", oneLine(err))
	case st.ctx.Err() != nil:
		st.fail(stack, abi.StatusCancelled, "the call's deadline passed or it was cancelled")
	default:
		p.log.Error("plugin kv "+op+" failed", "tool", st.tool, "err", err)
		st.fail(stack, abi.StatusFailed, "the key/value store failed")
	}
}

func (p *loadedPlugin) kvKey(st *callState, mod api.Module, stack []uint64, ptr, n uint32) (string, bool) {
	if n > store.MaxKVKeyLen {
		st.fail(stack, abi.StatusInvalidArgument, "key is longer than %d bytes", store.MaxKVKeyLen)
		return "", false
	}
	b, ok := read(mod, ptr, n)
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "key pointer outside memory")
		return "", false
	}
	key := string(b)
	if err := store.ValidatePluginKey(p.src.name, key); err != nil {
		st.fail(stack, abi.StatusInvalidArgument, "invalid key: %s", oneLine(err))
		return "", false
	}
	return key, true
}

func (p *loadedPlugin) hostKVGet(ctx context.Context, mod api.Module, stack []uint64) {
	st := p.kvCheck(ctx, stack)
	if st == nil {
		return
	}
	key, ok := p.kvKey(st, mod, stack, uint32(stack[0]), uint32(stack[1]))
	if !ok {
		return
	}
	v, err := p.h.cfg.KV.KVGet(st.ctx, p.src.name, key)
	if err != nil {
		p.kvFailed(st, stack, "get", err)
		return
	}
	if v == nil {
		v = []byte{}
	}
	st.ok(stack, v)
}

func (p *loadedPlugin) hostKVPut(ctx context.Context, mod api.Module, stack []uint64) {
	st := p.kvCheck(ctx, stack)
	if st == nil {
		return
	}
	key, ok := p.kvKey(st, mod, stack, uint32(stack[0]), uint32(stack[1]))
	if !ok {
		return
	}
	vn := uint32(stack[3])
	if vn > store.MaxKVValueLen {
		st.fail(stack, abi.StatusTooLarge, "value is %d bytes, over the %d byte limit", vn, store.MaxKVValueLen)
		return
	}
	val, ok := read(mod, uint32(stack[2]), vn)
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "value pointer outside memory")
		return
	}
	ttlMS := int64(stack[4])
	if ttlMS < 0 {
		st.fail(stack, abi.StatusInvalidArgument, "ttl_ms must not be negative")
		return
	}
	if err := p.h.cfg.KV.KVPut(st.ctx, p.src.name, key, val, time.Duration(ttlMS)*time.Millisecond); err != nil {
		p.kvFailed(st, stack, "put", err)
		return
	}
	st.pending = nil
	stack[0] = 0
}

func (p *loadedPlugin) hostKVDelete(ctx context.Context, mod api.Module, stack []uint64) {
	st := p.kvCheck(ctx, stack)
	if st == nil {
		return
	}
	key, ok := p.kvKey(st, mod, stack, uint32(stack[0]), uint32(stack[1]))
	if !ok {
		return
	}
	if err := p.h.cfg.KV.KVDelete(st.ctx, p.src.name, key); err != nil {
		p.kvFailed(st, stack, "delete", err)
		return
	}
	st.pending = nil
	stack[0] = 0
}

// maxKVList caps the keys one kv_list returns.
const maxKVList = 1000

func (p *loadedPlugin) hostKVList(ctx context.Context, mod api.Module, stack []uint64) {
	st := p.kvCheck(ctx, stack)
	if st == nil {
		return
	}
	n := uint32(stack[1])
	if n > 4*store.MaxKVKeyLen {
		st.fail(stack, abi.StatusInvalidArgument, "list request too large")
		return
	}
	raw, ok := read(mod, uint32(stack[0]), n)
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "request pointer outside memory")
		return
	}
	var req abi.KVListRequest
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &req); err != nil {
			st.fail(stack, abi.StatusInvalidArgument, "request is not a valid KVListRequest: %v", err)
			return
		}
	}
	if err := store.ValidatePluginPrefix(p.src.name, req.Prefix); err != nil {
		st.fail(stack, abi.StatusInvalidArgument, "invalid prefix: %s", oneLine(err))
		return
	}
	if req.Limit <= 0 || req.Limit > maxKVList {
		req.Limit = maxKVList
	}
	keys, err := p.h.cfg.KV.KVList(st.ctx, p.src.name, req.Prefix, req.After, req.Limit)
	if err != nil {
		p.kvFailed(st, stack, "list", err)
		return
	}
	if keys == nil {
		keys = []string{}
	}
	out, err := json.Marshal(abi.KVListResponse{Keys: keys})
	if err != nil {
		st.fail(stack, abi.StatusFailed, "encoding the key list failed")
		return
	}
	st.ok(stack, out)
}

// name reads a config or secret name argument.
func readName(st *callState, mod api.Module, stack []uint64) (string, bool) {
	n := uint32(stack[1])
	if n > 1024 {
		st.fail(stack, abi.StatusInvalidArgument, "name is too long")
		return "", false
	}
	b, ok := read(mod, uint32(stack[0]), n)
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "name pointer outside memory")
		return "", false
	}
	return string(b), true
}

func (p *loadedPlugin) hostConfigGet(ctx context.Context, mod api.Module, stack []uint64) {
	st := enter(ctx, stack)
	if st == nil {
		return
	}
	name, ok := readName(st, mod, stack)
	if !ok {
		return
	}
	v, ok := p.grants.config[name]
	if !ok {
		st.fail(stack, abi.StatusNotGranted, "config value %q is not granted to plugin %q", name, p.src.name)
		return
	}
	st.ok(stack, []byte(v))
}

func (p *loadedPlugin) hostSecretGet(ctx context.Context, mod api.Module, stack []uint64) {
	st := enter(ctx, stack)
	if st == nil {
		return
	}
	name, ok := readName(st, mod, stack)
	if !ok {
		return
	}
	env, ok := p.grants.secrets[name]
	if !ok {
		st.fail(stack, abi.StatusNotGranted, "secret %q is not granted to plugin %q", name, p.src.name)
		return
	}
	v, ok := p.h.cfg.LookupEnv(env)
	if !ok || v == "" {
		st.fail(stack, abi.StatusNotFound, "secret %q is not set (the operator has not set environment variable %s)", name, env)
		return
	}
	st.ok(stack, []byte(v))
}

// Progress is one progress report from a running call.
type Progress struct {
	// Progress is the amount done so far; Total is the amount to do, or <= 0
	// when unknown.
	Progress, Total float64
	// Message is the guest's description, capped at abi.MaxLogLineBytes.
	Message string
}

func (p *loadedPlugin) hostProgress(ctx context.Context, mod api.Module, stack []uint64) {
	st := enter(ctx, stack)
	if st == nil {
		return
	}
	if !p.grants.progress {
		st.fail(stack, abi.StatusNotGranted, "progress is not granted to plugin %q", p.src.name)
		return
	}
	prog, total := api.DecodeF64(stack[0]), api.DecodeF64(stack[1])
	msg, ok := read(mod, uint32(stack[2]), min(uint32(stack[3]), abi.MaxLogLineBytes))
	if !ok {
		st.fail(stack, abi.StatusInvalidArgument, "message pointer outside memory")
		return
	}
	if st.progress != nil {
		st.progress(Progress{Progress: prog, Total: total, Message: string(msg)})
	}
	st.pending = nil
	stack[0] = 0
}

// hostTools answers with the tool list the gate supplied for this call
// (CallOptions.Tools), sorted by name, or an empty list when it supplied
// none.
func (p *loadedPlugin) hostTools(ctx context.Context, _ api.Module, stack []uint64) {
	st := enter(ctx, stack)
	if st == nil {
		return
	}
	if !p.grants.tools {
		st.fail(stack, abi.StatusNotGranted, "tools is not granted to plugin %q", p.src.name)
		return
	}
	tools := []abi.ToolAccess{}
	if st.tools != nil {
		if got := st.tools(); got != nil {
			tools = slices.Clone(got)
		}
	}
	slices.SortStableFunc(tools, func(a, b abi.ToolAccess) int { return strings.Compare(a.Name, b.Name) })
	out, err := json.Marshal(abi.ToolsResponse{Tools: tools})
	if err != nil {
		st.fail(stack, abi.StatusFailed, "encoding the tool list failed")
		return
	}
	st.ok(stack, out)
}

// oneLine renders an error (errors.Join puts parts on separate lines) on one line.
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", ": ") }
