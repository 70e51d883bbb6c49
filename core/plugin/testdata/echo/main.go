// Command echo is the well-behaved test plugin: an "echo" tool that returns
// its arguments as text, an "add" tool that adds two numbers, and a "noop"
// tool that answers a constant without decoding its input (the benchmarks
// use it to measure the host's own per-call cost). It is
// written directly against sdk/abi (no SDK) so the host tests and benchmarks
// exercise nothing but the ABI.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unsafe"

	"github.com/toolgate/toolgate/sdk/abi"
)

func main() {}

var (
	inBuf      []byte
	outBuf     []byte
	noopPrefix = []byte(`{"tool":"noop"`)
	noopResult = []byte(`{"content":[{"type":"text","text":"noop"}]}`)
	manifest   = mustJSON(abi.Manifest{
		ABI:     abi.Version,
		Name:    "echo",
		Version: "1.0.0",
		Tools: []abi.Tool{
			{Name: "echo", Description: "Returns its arguments as text.", InputSchema: json.RawMessage(`{"type":"object"}`)},
			{Name: "noop", Description: "Answers a constant.", InputSchema: json.RawMessage(`{"type":"object"}`)},
			{Name: "add", Description: "Adds a and b.", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)},
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

//go:wasmexport toolgate_manifest
func manifestExport() uint64 { return pack(manifest) }

//go:wasmexport toolgate_call
func call(ptr, n int32) uint64 {
	in := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n)
	// The host encodes CallInput with "tool" first.
	if bytes.HasPrefix(in, noopPrefix) {
		return pack(noopResult)
	}
	var ci abi.CallInput
	if err := json.Unmarshal(in, &ci); err != nil {
		return result(abi.CallResult{Error: &abi.Error{Code: abi.ErrInvalidArguments, Message: err.Error()}})
	}
	switch ci.Tool {
	case "echo":
		return result(abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: string(ci.Arguments)}}})
	case "add":
		var args struct{ A, B float64 }
		if err := json.Unmarshal(ci.Arguments, &args); err != nil {
			return result(abi.CallResult{Error: &abi.Error{Code: abi.ErrInvalidArguments, Message: err.Error()}})
		}
		return result(abi.CallResult{Content: []abi.Content{{Type: abi.ContentText, Text: strconv.FormatFloat(args.A+args.B, 'g', -1, 64)}}})
	}
	return result(abi.CallResult{Error: &abi.Error{Code: abi.ErrUnknownTool, Message: "no tool " + strconv.Quote(ci.Tool)}})
}

func result(r abi.CallResult) uint64 {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	outBuf = b
	return pack(outBuf)
}
