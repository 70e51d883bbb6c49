// Command faulty is the misbehaving test plugin. Each tool exercises one way
// a plugin can fail (an endless loop, a memory bomb, a trap, garbage or
// oversized output) or one host function (http, kv, config, secrets,
// progress, log, clock and randomness). It is written directly against
// sdk/abi, without the SDK, so that it can break the rules.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o faulty.wasm .
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/toolgate/toolgate/sdk/abi"
)

func main() {}

//go:wasmimport toolgate/v1 log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport toolgate/v1 result_read
func hostResultRead(ptr unsafe.Pointer, limit int32) int32

//go:wasmimport toolgate/v1 http_request
func hostHTTP(ptr unsafe.Pointer, n int32) int64

//go:wasmimport toolgate/v1 kv_get
func hostKVGet(ptr unsafe.Pointer, n int32) int64

//go:wasmimport toolgate/v1 kv_put
func hostKVPut(kptr unsafe.Pointer, kn int32, vptr unsafe.Pointer, vn int32, ttl int64) int64

//go:wasmimport toolgate/v1 config_get
func hostConfigGet(ptr unsafe.Pointer, n int32) int64

//go:wasmimport toolgate/v1 secret_get
func hostSecretGet(ptr unsafe.Pointer, n int32) int64

//go:wasmimport toolgate/v1 progress
func hostProgress(p, total float64, ptr unsafe.Pointer, n int32) int64

var (
	inBuf    []byte
	outBuf   []byte
	hoard    [][]byte
	obj      = json.RawMessage(`{"type":"object"}`)
	manifest = mustJSON(abi.Manifest{
		ABI:     abi.Version,
		Name:    "faulty",
		Version: "1.0.0",
		Tools: []abi.Tool{
			{Name: "ok", Description: "Answers ok.", InputSchema: obj},
			{Name: "loop", Description: "Never returns.", InputSchema: obj},
			{Name: "bomb", Description: "Allocates until memory runs out.", InputSchema: obj},
			{Name: "trap", Description: "Panics without recovering.", InputSchema: obj},
			{Name: "garbage", Description: "Returns bytes that are not JSON.", InputSchema: obj},
			{Name: "badptr", Description: "Returns a pointer outside its memory.", InputSchema: obj},
			{Name: "big", Description: "Returns a text of n bytes.", InputSchema: obj},
			{Name: "grow", Description: "Allocates n MiB and keeps it.", InputSchema: obj},
			{Name: "slow", Description: "Reports progress, then sleeps ms milliseconds.", InputSchema: obj},
			{Name: "http", Description: "Fetches url.", InputSchema: obj},
			{Name: "kv", Description: "Stores value under key, then reads it back.", InputSchema: obj},
			{Name: "config", Description: "Reads config value name.", InputSchema: obj},
			{Name: "secret", Description: "Reads secret name.", InputSchema: obj},
			{Name: "log", Description: "Logs and prints n bytes.", InputSchema: obj},
			{Name: "entropy", Description: "Returns the time and random bytes.", InputSchema: obj},
			{Name: "manifeststatus", Description: "Returns what config_get answered during toolgate_manifest.", InputSchema: obj},
		},
		Capabilities: abi.Capabilities{
			HTTP:     []string{"127.0.0.1"},
			KV:       true,
			Config:   []string{"greeting"},
			Secrets:  []string{"token"},
			Progress: true,
		},
	})
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func ptrOf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func pack(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return abi.Pack(uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
}

//go:wasmexport toolgate_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport toolgate_alloc
func alloc(size int32) int32 {
	if size < 1 {
		size = 1
	}
	if cap(inBuf) < int(size) {
		inBuf = make([]byte, size)
	}
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

// manifestStatus is what config_get answered during toolgate_manifest,
// where host functions other than log must fail.
var manifestStatus int64 = 1

//go:wasmexport toolgate_manifest
func manifestExport() uint64 {
	name := []byte("greeting")
	manifestStatus = hostConfigGet(ptrOf(name), int32(len(name)))
	return pack(manifest)
}

// pending reads the host's pending result after a host call returned status.
func pending(status int64) (string, error) {
	msgLen := status
	if status < 0 {
		msgLen = int64(hostResultRead(nil, 0))
	}
	buf := make([]byte, msgLen)
	if msgLen > 0 {
		hostResultRead(ptrOf(buf), int32(len(buf)))
	}
	if status < 0 {
		return "", fmt.Errorf("status %d: %s", status, buf)
	}
	return string(buf), nil
}

type args struct {
	N     int    `json:"n"`
	MS    int    `json:"ms"`
	URL   string `json:"url"`
	Key   string `json:"key"`
	Value string `json:"value"`
	Name  string `json:"name"`
}

//go:wasmexport toolgate_call
func call(ptr, n int32) uint64 {
	in := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
	var ci abi.CallInput
	if err := json.Unmarshal(in, &ci); err != nil {
		return fail(abi.ErrInvalidArguments, err.Error())
	}
	var a args
	if len(ci.Arguments) > 0 {
		if err := json.Unmarshal(ci.Arguments, &a); err != nil {
			return fail(abi.ErrInvalidArguments, err.Error())
		}
	}
	switch ci.Tool {
	case "ok":
		return text("ok " + ci.Caller.UserID)
	case "loop":
		x := 0
		for {
			x++
		}
	case "bomb":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "trap":
		panic("boom")
	case "garbage":
		outBuf = []byte("this is not json {")
		return pack(outBuf)
	case "badptr":
		return abi.Pack(0xfff00000, 1024)
	case "big":
		return text(strings.Repeat("x", a.N))
	case "grow":
		hoard = append(hoard, make([]byte, a.N<<20))
		return text("grew")
	case "slow":
		msg := []byte("sleeping")
		if st := hostProgress(0, 1, ptrOf(msg), int32(len(msg))); st != 0 {
			return fail(abi.ErrInternal, "progress: "+strconv.FormatInt(st, 10))
		}
		time.Sleep(time.Duration(a.MS) * time.Millisecond)
		return text("slept")
	case "http":
		req, _ := json.Marshal(abi.HTTPRequest{Method: "GET", URL: a.URL})
		body, err := pending(hostHTTP(ptrOf(req), int32(len(req))))
		if err != nil {
			return text("error: " + err.Error())
		}
		var resp abi.HTTPResponse
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return fail(abi.ErrInternal, err.Error())
		}
		return text(fmt.Sprintf("%d %s", resp.Status, resp.Body))
	case "kv":
		k, v := []byte(a.Key), []byte(a.Value)
		if a.Value != "" {
			if _, err := pending(hostKVPut(ptrOf(k), int32(len(k)), ptrOf(v), int32(len(v)), 0)); err != nil {
				return text("error: " + err.Error())
			}
		}
		got, err := pending(hostKVGet(ptrOf(k), int32(len(k))))
		if err != nil {
			return text("error: " + err.Error())
		}
		return text(got)
	case "config", "secret":
		name := []byte(a.Name)
		get := hostConfigGet
		if ci.Tool == "secret" {
			get = hostSecretGet
		}
		got, err := pending(get(ptrOf(name), int32(len(name))))
		if err != nil {
			return text("error: " + err.Error())
		}
		return text(got)
	case "log":
		line := []byte(strings.Repeat("l", a.N))
		hostLog(abi.LogWarn, ptrOf(line), int32(len(line)))
		fmt.Fprint(os.Stdout, strings.Repeat("o", a.N))
		fmt.Fprint(os.Stderr, strings.Repeat("e", a.N))
		return text("logged")
	case "manifeststatus":
		return text(strconv.FormatInt(manifestStatus, 10))
	case "entropy":
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fail(abi.ErrInternal, err.Error())
		}
		start := time.Now()
		time.Sleep(time.Duration(a.MS) * time.Millisecond)
		return text(fmt.Sprintf("%d %s %d", start.Unix(), hex.EncodeToString(b[:]), time.Since(start).Milliseconds()))
	}
	return fail(abi.ErrUnknownTool, "no tool "+strconv.Quote(ci.Tool))
}

func text(s string) uint64 {
	return result(abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: s}}})
}

func fail(code, msg string) uint64 {
	return result(abi.CallResult{Error: &abi.Error{Code: code, Message: msg}})
}

func result(r abi.CallResult) uint64 {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	outBuf = b
	return pack(outBuf)
}
