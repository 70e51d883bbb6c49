// Package sdk is what a toolgate plugin imports: it declares the plugin and
// its tools, turns typed Go functions into tools with JSON Schemas derived
// from their argument structs, and gives tools the host's capabilities as
// plain Go functions. It uses only the standard library and builds both
// natively (for tests, with sdk/sdktest) and as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o add.wasm ./plugins/add
//
// The wire contract it implements is sdk/ABI.md; sdk/abi holds its names.
//
// # A plugin
//
// A plugin is a package main that registers everything from an init
// function; its main function stays empty, because the host never runs it
// (a reactor is initialised, then called):
//
//	package main
//
//	import (
//		"context"
//		"strconv"
//
//		"github.com/toolgate/toolgate/sdk"
//	)
//
//	type AddArgs struct {
//		A float64 `json:"a" jsonschema:"the first addend"`
//		B float64 `json:"b" jsonschema:"the second addend"`
//	}
//
//	func init() {
//		sdk.Plugin("add", "1.0.0", "Adds two numbers.")
//		sdk.Tool("add", "Add two numbers.", func(ctx context.Context, args AddArgs) (sdk.Result, error) {
//			return sdk.Text(strconv.FormatFloat(args.A+args.B, 'g', -1, 64)), nil
//		})
//	}
//
//	func main() {}
//
// Registration mistakes (a bad tool name, an argument type that has no JSON
// Schema, a malformed tag) panic at init with the reason: the plugin's first
// test, or the host at load, reports them.
//
// # Arguments and their schema
//
// A tool's arguments are a struct. Its input schema is derived once, at
// registration, and the same prepared plan decodes every call:
//
//   - Member names come from json tags (`json:"name"`, `json:"-"` to skip);
//     untagged exported fields use the Go name; embedded structs without a
//     tag are flattened.
//   - Types: bool → boolean; integer kinds → integer (unsigned ones with
//     minimum 0); float kinds → number; string → string; []byte → base64
//     string; slices → array; map[string]T → object with
//     additionalProperties; structs → object with "additionalProperties":
//     false; pointers → the pointee's schema, optional; time.Time →
//     date-time string; any and json.RawMessage → any value. Channels,
//     functions, complex numbers, non-string map keys and recursive types
//     are refused.
//   - A field is required unless it is a pointer, has omitempty (or
//     omitzero), or has a default.
//   - `jsonschema:"..."` is the member's description (the whole tag).
//   - `schema:"..."` adds constraints, comma-separated key=value pairs:
//     minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers);
//     minLength, maxLength (strings, in characters); minItems, maxItems
//     (slices and maps); enum (values separated by |); default; format;
//     title; pattern (last, since its value runs to the end of the tag).
//     Default and enum values are typed from the field: on an int field,
//     `schema:"minimum=4,maximum=8,default=4"` gives numbers.
//
// Decoding is strict: an unknown member, a missing required member, a value
// of the wrong type or outside minimum/maximum/enum/length/items is an
// invalid_arguments error naming the member, and the handler does not run.
// A missing member with a default gets it; null counts as missing. format
// and pattern are published for the model and the host but not checked
// here. Integral numbers such as 4.0 are accepted for integer fields.
//
// # Results and errors
//
// A handler returns a Result built with Text, Image, Structured or
// ErrorResult and extended with WithText, WithImage and WithStructured. A
// returned error becomes a tool error (is_error) whose text the model
// reads; a panic is recovered and reported as an internal error, so the
// instance stays usable. Declare structured output with Output[T] to
// publish T's schema.
//
// # Host capabilities
//
// A handler's context is never cancelled from inside the guest: the host
// enforces the call's deadline by stopping the instance, and host functions
// report a passed deadline as ErrCancelled. Caller and CallID describe the
// running call. Logger and the Log
// functions write to the host's log. HTTPDo, KVGet, KVPut, KVDelete,
// KVList, Config, Secret, Progress and Tools reach the host; each needs the
// capability declared in Plugin (AllowHTTP, UseKV, UseConfig, UseSecrets,
// UseProgress, UseTools) and granted by the operator in plugins.toml. A failure
// wraps one of ErrNotGranted, ErrNotFound, ErrInvalidArgument, ErrTooLarge,
// ErrFailed or ErrCancelled with the host's message (see HostError).
//
// # Cost
//
// A WebAssembly host that can stop runaway plugins checks for termination
// at every loop back-edge, which Go's WebAssembly code takes on most
// branches, and those checks dominate a small call. The call path therefore avoids reflection and allocation
// where it can: schemas and decode plans are built at registration, the
// input and output buffers are reused, the caller identity is parsed once
// per distinct caller, and the arguments value is reused between calls.
package sdk
