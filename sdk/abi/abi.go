// Package abi is the wire contract between the toolgate host and its
// WebAssembly plugins: the ABI version, the names of the guest's exports and
// the host's imports, the status codes host functions return, the JSON
// envelopes that cross the boundary, and every limit. Both sides import it;
// it imports only the standard library. The prose specification, with the
// reasons behind each decision, is sdk/ABI.md.
package abi

import "encoding/json"

// Version is the ABI version this package describes. A guest reports the
// version it was built for from ExportABIVersion; the host refuses any other.
const Version = 1

// HostModule is the name of the one import module holding every host
// function. The version is part of the name so that a future, incompatible
// set of host functions can live beside this one.
const HostModule = "toolgate/v1"

// Guest exports. Signatures are in WebAssembly types; "packed" means an i64
// holding ptr<<32 | len (see Pack).
const (
	// ExportInitialize is the WASI reactor initializer ("_initialize"); the
	// host calls it once per instance before anything else, if present.
	ExportInitialize = "_initialize"
	// ExportABIVersion: () -> i32. Returns the ABI version (Version).
	ExportABIVersion = "toolgate_abi_version"
	// ExportAlloc: (size i32) -> i32 ptr. Returns a guest buffer of at least
	// size bytes that the host writes a call input into. The buffer belongs
	// to the guest; ownership of its contents passes to the guest when the
	// host calls ExportCall with it. Returns 0 if it cannot allocate.
	ExportAlloc = "toolgate_alloc"
	// ExportManifest: () -> i64 packed. Points at the manifest JSON in guest
	// memory. The guest owns the buffer; it stays valid until the next call
	// into the guest.
	ExportManifest = "toolgate_manifest"
	// ExportCall: (ptr i32, len i32) -> i64 packed. Runs one tool call. The
	// input is a CallInput JSON at ptr/len (a buffer from ExportAlloc). The
	// result is a CallResult JSON in guest memory, valid until the next call
	// into the guest.
	ExportCall = "toolgate_call"
)

// Host functions, all in HostModule. Functions returning "status i64" return
// a non-negative byte length of a result the host keeps pending for the
// guest, to be copied out with FuncResultRead, or a negative Status. On a
// negative Status a human-readable error message is pending instead.
const (
	// FuncLog: (level i32, ptr i32, len i32) -> (). Writes a log line. Always available.
	FuncLog = "log"
	// FuncResultRead: (ptr i32, limit i32) -> i32. Copies the pending result
	// into guest memory if it fits in limit bytes, and returns its length
	// either way (buffer-plus-limit rule). The pending result is cleared
	// only when it was copied. Returns 0 when nothing is pending.
	FuncResultRead = "result_read"
	// FuncHTTPRequest: (ptr i32, len i32) -> status i64. Performs the
	// HTTPRequest JSON at ptr/len; the pending result is an HTTPResponse JSON.
	// Needs the "http" capability.
	FuncHTTPRequest = "http_request"
	// FuncKVGet: (key_ptr i32, key_len i32) -> status i64. Pending result:
	// the raw value. Needs "kv".
	FuncKVGet = "kv_get"
	// FuncKVPut: (key_ptr i32, key_len i32, val_ptr i32, val_len i32, ttl_ms i64) -> status i64.
	// ttl_ms 0 means no expiry. Returns 0 on success. Needs "kv".
	FuncKVPut = "kv_put"
	// FuncKVDelete: (key_ptr i32, key_len i32) -> status i64. Returns 0. Needs "kv".
	FuncKVDelete = "kv_delete"
	// FuncKVList: (ptr i32, len i32) -> status i64. Input: KVListRequest
	// JSON; pending result: KVListResponse JSON. Needs "kv".
	FuncKVList = "kv_list"
	// FuncConfigGet: (name_ptr i32, name_len i32) -> status i64. Pending
	// result: the value's bytes. Needs the name in the "config" capability.
	FuncConfigGet = "config_get"
	// FuncSecretGet: (name_ptr i32, name_len i32) -> status i64. Pending
	// result: the secret's bytes. Needs the name in the "secrets" capability.
	FuncSecretGet = "secret_get"
	// FuncProgress: (progress f64, total f64, msg_ptr i32, msg_len i32) -> status i64.
	// Reports progress of the running call; total <= 0 means unknown.
	// Returns 0. Needs "progress".
	FuncProgress = "progress"
	// FuncTools: () -> status i64. Pending result: a ToolsResponse JSON
	// listing every tool on the server with whether the current caller may
	// use it and, if not, what is missing. Needs "tools". Added in ABI
	// version 1 as an optional import: a host without it refuses a plugin
	// that imports it at load, naming the function.
	FuncTools = "tools"
)

// Status is the negative result of a host function.
type Status int64

const (
	StatusOK              Status = 0
	StatusNotGranted      Status = -1 // the capability (or that host, name, ...) is not granted
	StatusNotFound        Status = -2 // no such key, config value or secret
	StatusInvalidArgument Status = -3 // malformed input: bad JSON, bad key, out-of-bounds pointer
	StatusTooLarge        Status = -4 // input or result over its limit
	StatusFailed          Status = -5 // the operation failed (network error, HTTP timeout, store error)
	StatusCancelled       Status = -6 // the call's deadline passed or it was cancelled
)

// Log levels for FuncLog.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Limits the host enforces. Operators may lower or raise some of them per
// plugin; these are the defaults and hard caps named in ABI.md.
const (
	MaxManifestBytes   = 1 << 20  // manifest JSON
	MaxToolsPerPlugin  = 128      // tools in one manifest
	MaxInputBytes      = 4 << 20  // CallInput JSON
	DefaultOutputBytes = 8 << 20  // CallResult JSON, per call, by default
	MaxLogLineBytes    = 4 << 10  // longer log messages are truncated
	MaxHTTPBodyBytes   = 16 << 20 // HTTP request or response body, hard cap
	MaxToolNameLen     = 128      // per the MCP tool-name rules
)

// Pack packs a pointer and a length into the i64 the guest exports return.
func Pack(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// Unpack splits a packed i64 into pointer and length.
func Unpack(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }

// Manifest is what a plugin declares about itself (ExportManifest).
type Manifest struct {
	ABI          int          `json:"abi"`
	Name         string       `json:"name"`
	Version      string       `json:"version"`
	Description  string       `json:"description,omitempty"`
	Tools        []Tool       `json:"tools"`
	Capabilities Capabilities `json:"capabilities"`
}

// Tool is one tool a plugin serves.
type Tool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description"`
	// InputSchema is a JSON Schema with "type": "object".
	InputSchema json.RawMessage `json:"input_schema"`
	// OutputSchema, if set, is a JSON Schema of type object describing the
	// structured result.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	// Permissions the caller must all hold (AuthKit permission slugs). The
	// operator can replace this rule in plugins.toml.
	Permissions []string         `json:"permissions,omitempty"`
	Annotations *ToolAnnotations `json:"annotations,omitempty"`
}

// ToolAnnotations are the MCP tool hints.
type ToolAnnotations struct {
	ReadOnly    bool `json:"read_only,omitempty"`
	Destructive bool `json:"destructive,omitempty"`
	Idempotent  bool `json:"idempotent,omitempty"`
	OpenWorld   bool `json:"open_world,omitempty"`
}

// Capabilities are the host functions beyond log a plugin asks for. Each
// must be granted in plugins.toml or the plugin is refused at load.
type Capabilities struct {
	// HTTP lists hosts (host or host:port) the plugin wants to reach.
	HTTP []string `json:"http,omitempty"`
	// KV asks for the plugin's key/value namespace.
	KV bool `json:"kv,omitempty"`
	// Config lists config value names the plugin reads.
	Config []string `json:"config,omitempty"`
	// Secrets lists secret names the plugin reads.
	Secrets []string `json:"secrets,omitempty"`
	// Progress asks to report progress.
	Progress bool `json:"progress,omitempty"`
	// Tools asks to read the server's tool list as the caller sees it
	// (FuncTools), for tools like whoami that explain access.
	Tools bool `json:"tools,omitempty"`
}

// Caller is who is calling: the identity AuthKit vouched for. Never a token.
type Caller struct {
	UserID         string   `json:"user_id"`
	Email          string   `json:"email,omitempty"`
	OrganizationID string   `json:"organization_id,omitempty"`
	Role           string   `json:"role,omitempty"`
	Permissions    []string `json:"permissions"`
	ClientID       string   `json:"client_id,omitempty"`
}

// CallInput is what the host passes to ExportCall.
type CallInput struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Caller    Caller          `json:"caller"`
	// CallID identifies the call in logs on both sides.
	CallID string `json:"call_id,omitempty"`
}

// CallResult is what ExportCall returns. Exactly one of (Content and/or
// Structured) or Error is meaningful: Error set means the call failed before
// producing a result (unknown tool, arguments that do not decode, a panic
// the guest recovered from).
type CallResult struct {
	Content    []Content       `json:"content,omitempty"`
	Structured json.RawMessage `json:"structured,omitempty"`
	// IsError marks Content as a tool error: a failure explained to the model.
	IsError bool   `json:"is_error,omitempty"`
	Error   *Error `json:"error,omitempty"`
}

// Content is one MCP content block.
type Content struct {
	Type     string `json:"type"` // ContentText or ContentImage
	Text     string `json:"text,omitempty"`
	Data     []byte `json:"data,omitempty"` // base64 in JSON
	MimeType string `json:"mime_type,omitempty"`
}

// Content types.
const (
	ContentText  = "text"
	ContentImage = "image"
)

// Error is a failure the guest reports instead of a result.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes a guest may report in CallResult.Error.
const (
	ErrUnknownTool      = "unknown_tool"
	ErrInvalidArguments = "invalid_arguments"
	ErrInternal         = "internal"
)

// HTTPRequest is the input of FuncHTTPRequest.
type HTTPRequest struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
	// TimeoutMS bounds the request; 0 uses the host's default. The call's
	// own deadline always applies.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// HTTPResponse is the pending result of FuncHTTPRequest.
type HTTPResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
}

// KVListRequest is the input of FuncKVList.
type KVListRequest struct {
	Prefix string `json:"prefix,omitempty"`
	After  string `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// KVListResponse is the pending result of FuncKVList.
type KVListResponse struct {
	Keys []string `json:"keys"`
}

// ToolAccess is one tool on the server as a caller sees it (FuncTools).
type ToolAccess struct {
	Name        string `json:"name"`
	Plugin      string `json:"plugin"`
	Description string `json:"description,omitempty"`
	// Allowed says whether the caller may list and call the tool.
	Allowed bool `json:"allowed"`
	// Missing explains a denial in words, for example "permission
	// image_generation"; empty when allowed.
	Missing string `json:"missing,omitempty"`
}

// ToolsResponse is the pending result of FuncTools, tools sorted by name.
type ToolsResponse struct {
	Tools []ToolAccess `json:"tools"`
}
