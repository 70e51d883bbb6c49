package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/internal/hostcall"
)

// stubHost answers every host function with one canned reply and records
// what it was asked.
type stubHost struct {
	res    []byte
	status abi.Status
	got    []string
	logs   []string
}

func (h *stubHost) reply(call string) ([]byte, abi.Status) {
	h.got = append(h.got, call)
	return h.res, h.status
}
func (h *stubHost) Log(level int32, msg []byte) { h.logs = append(h.logs, string(msg)) }
func (h *stubHost) HTTPRequest(req []byte) ([]byte, abi.Status) {
	return h.reply("http " + string(req))
}
func (h *stubHost) KVGet(key []byte) ([]byte, abi.Status) { return h.reply("get " + string(key)) }
func (h *stubHost) KVPut(key, val []byte, ttl int64) ([]byte, abi.Status) {
	return h.reply("put " + string(key) + "=" + string(val) + " " + time.Duration(ttl*int64(time.Millisecond)).String())
}
func (h *stubHost) KVDelete(key []byte) ([]byte, abi.Status) { return h.reply("delete " + string(key)) }
func (h *stubHost) KVList(req []byte) ([]byte, abi.Status)   { return h.reply("list " + string(req)) }
func (h *stubHost) ConfigGet(name []byte) ([]byte, abi.Status) {
	return h.reply("config " + string(name))
}
func (h *stubHost) SecretGet(name []byte) ([]byte, abi.Status) {
	return h.reply("secret " + string(name))
}
func (h *stubHost) Progress(p, total float64, msg []byte) ([]byte, abi.Status) {
	return h.reply("progress " + string(msg))
}
func (h *stubHost) Tools() ([]byte, abi.Status) { return h.reply("tools") }

func TestHostErrorMapping(t *testing.T) {
	tests := []struct {
		status abi.Status
		want   error
	}{
		{abi.StatusNotGranted, ErrNotGranted},
		{abi.StatusNotFound, ErrNotFound},
		{abi.StatusInvalidArgument, ErrInvalidArgument},
		{abi.StatusTooLarge, ErrTooLarge},
		{abi.StatusFailed, ErrFailed},
		{abi.StatusCancelled, ErrCancelled},
		{-99, ErrUnknownStatus},
	}
	ctx := context.Background()
	for _, tt := range tests {
		h := &stubHost{res: []byte("because the host said so"), status: tt.status}
		restore := hostcall.SetHost(h)
		calls := map[string]error{}
		_, calls["kv_get"] = KVGet(ctx, "k")
		calls["kv_put"] = KVPut(ctx, "k", []byte("v"), 0)
		calls["kv_delete"] = KVDelete(ctx, "k")
		_, calls["kv_list"] = KVList(ctx, "p", "", 0)
		_, calls["config_get"] = Config(ctx, "c")
		_, calls["secret_get"] = Secret(ctx, "s")
		calls["progress"] = Progress(ctx, 1, 2, "m")
		_, calls["tools"] = Tools(ctx)
		_, calls["http_request"] = HTTPGet(ctx, "https://api.example.com/")
		restore()
		for fn, err := range calls {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s with status %d: error %v, want %v", fn, tt.status, err, tt.want)
			}
			var he *HostError
			if !errors.As(err, &he) || he.Func != fn || he.Status != tt.status {
				t.Errorf("%s with status %d: error %#v, want a *HostError for it", fn, tt.status, err)
			}
			if err != nil && !strings.Contains(err.Error(), "because the host said so") {
				t.Errorf("%s: error %q does not carry the host's message", fn, err)
			}
		}
	}
}

func TestHostResults(t *testing.T) {
	ctx := context.Background()
	h := &stubHost{}
	defer hostcall.SetHost(h)()

	h.res = []byte("value bytes")
	if v, err := KVGet(ctx, "key"); err != nil || string(v) != "value bytes" {
		t.Errorf("KVGet = %q, %v; want value bytes", v, err)
	}
	h.res = []byte{}
	if v, err := KVGet(ctx, "empty"); err != nil || len(v) != 0 {
		t.Errorf("KVGet(empty) = %q, %v; want an empty value", v, err)
	}
	h.res = nil
	if err := KVPut(ctx, "k", []byte("v"), 1500*time.Microsecond); err != nil {
		t.Errorf("KVPut: %v", err)
	}
	if err := KVPut(ctx, "k", []byte("v"), -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("KVPut with a negative ttl = %v, want ErrInvalidArgument", err)
	}
	h.res = []byte(`{"keys":["a","b"]}`)
	if keys, err := KVList(ctx, "p", "a", 2); err != nil || strings.Join(keys, ",") != "a,b" {
		t.Errorf("KVList = %v, %v; want [a b]", keys, err)
	}
	h.res = []byte(`{"status":201,"headers":{"X":["1"]},"body":"aGk="}`)
	resp, err := HTTPDo(ctx, HTTPRequest{Method: "POST", URL: "https://api.example.com/x", Body: []byte("hi"), Timeout: 2 * time.Second})
	if err != nil || resp.Status != 201 || string(resp.Body) != "hi" || resp.Header["X"][0] != "1" {
		t.Errorf("HTTPDo = %+v, %v; want status 201 body hi", resp, err)
	}
	h.res = []byte(`{"tools":[{"name":"a","plugin":"p","allowed":true},{"name":"b","plugin":"p","allowed":false,"missing":"permission x"}]}`)
	if tools, err := Tools(ctx); err != nil || len(tools) != 2 || !tools[0].Allowed || tools[1].Missing != "permission x" {
		t.Errorf("Tools = %+v, %v; want a allowed and b missing permission x", tools, err)
	}
	h.res = []byte(`not json`)
	if _, err := Tools(ctx); err == nil {
		t.Error("Tools with a malformed host response succeeded")
	}
	if _, err := HTTPGet(ctx, "https://api.example.com/"); err == nil {
		t.Error("HTTPGet with an undecodable host reply succeeded")
	}
	want := []string{
		"get key", "get empty", "put k=v 2ms",
		`list {"prefix":"p","after":"a","limit":2}`,
		`http {"method":"POST","url":"https://api.example.com/x","body":"aGk=","timeout_ms":2000}`,
		"tools", "tools",
		`http {"method":"GET","url":"https://api.example.com/"}`,
	}
	if strings.Join(h.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("host saw\n%s\nwant\n%s", strings.Join(h.got, "\n"), strings.Join(want, "\n"))
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := KVGet(cancelled, "k"); !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Errorf("KVGet on a cancelled context = %v, want ErrCancelled and context.Canceled", err)
	}
}

func TestNoHostNatively(t *testing.T) {
	_, err := Config(context.Background(), "x")
	if !errors.Is(err, ErrNotGranted) || !strings.Contains(err.Error(), "sdktest") {
		t.Errorf("Config without a host = %v, want ErrNotGranted pointing at sdktest", err)
	}
}

func TestLogger(t *testing.T) {
	h := &stubHost{}
	defer hostcall.SetHost(h)()
	ctx := &callCtx{Context: context.Background()}
	ctx.setID([]byte("call-9"), false)
	LogInfo(ctx, "hello", "n", 1)
	Logger().With("plugin", "x").WithGroup("g").Warn("careful", "k", "v")
	want := []string{`msg=hello n=1 call_id=call-9`, `msg=careful plugin=x g.k=v`}
	if strings.Join(h.logs, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(h.logs, "\n"), strings.Join(want, "\n"))
	}
}

func TestManifest(t *testing.T) {
	raw, err := Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var m abi.Manifest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest %s: %v", raw, err)
	}
	if m.ABI != abi.Version || m.Name != "sdktest" || m.Version != "0.0.1" {
		t.Errorf("manifest header = %d %q %q", m.ABI, m.Name, m.Version)
	}
	if !m.Capabilities.KV || len(m.Capabilities.HTTP) != 1 || m.Capabilities.HTTP[0] != "api.example.com" {
		t.Errorf("capabilities = %+v, want kv and api.example.com", m.Capabilities)
	}
	byName := map[string]abi.Tool{}
	for _, tool := range m.Tools {
		byName[tool.Name] = tool
	}
	if got := byName["test_image"].Permissions; len(got) != 1 || got[0] != "image_generation" {
		t.Errorf("test_image permissions = %v, want [image_generation]", got)
	}
	if got := string(byName["test_add"].OutputSchema); got != `{"type":"object","properties":{"sum":{"type":"number"}},"required":["sum"],"additionalProperties":false}` {
		t.Errorf("test_add output schema = %s", got)
	}
	if len(m.Tools) == 0 || m.Tools[0].Name != "test_add" {
		t.Errorf("tools are not in registration order: %v", m.Tools)
	}
}
