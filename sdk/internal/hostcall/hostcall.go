// Package hostcall is the guest's side of the toolgate/v1 host functions:
// thin wrappers over the raw //go:wasmimport declarations (wasip1 builds) or
// over a fake host installed with SetHost (tests, any build).
//
// Every function mirrors one host function of sdk/abi. Functions that return
// a status return a non-negative length of a pending result or a negative
// abi.Status, exactly as the host function does; ResultRead copies the
// pending result out under the buffer-plus-limit rule.
package hostcall

import (
	"sync"

	"github.com/toolgate/toolgate/sdk/abi"
)

// Host is a fake host. Each method answers one host function: on success it
// returns the bytes to keep pending (nil for none) and abi.StatusOK; on
// failure it returns a human-readable message and a negative status.
// Methods are called from the goroutine running the tool handler.
type Host interface {
	Log(level int32, msg []byte)
	HTTPRequest(req []byte) ([]byte, abi.Status)
	KVGet(key []byte) ([]byte, abi.Status)
	KVPut(key, val []byte, ttlMS int64) ([]byte, abi.Status)
	KVDelete(key []byte) ([]byte, abi.Status)
	KVList(req []byte) ([]byte, abi.Status)
	ConfigGet(name []byte) ([]byte, abi.Status)
	SecretGet(name []byte) ([]byte, abi.Status)
	Progress(progress, total float64, msg []byte) ([]byte, abi.Status)
	Tools() ([]byte, abi.Status)
}

// fake is the installed fake host and its pending result. A nil host means
// the real imports (wasip1) or the no-host stub (native).
var fake struct {
	mu      sync.Mutex
	host    Host
	pending []byte
	has     bool
}

// SetHost installs h as the host for every following call and returns a
// function that restores the previous one. Passing nil removes the fake.
func SetHost(h Host) (restore func()) {
	fake.mu.Lock()
	prev := fake.host
	fake.host, fake.pending, fake.has = h, nil, false
	fake.mu.Unlock()
	return func() {
		fake.mu.Lock()
		fake.host, fake.pending, fake.has = prev, nil, false
		fake.mu.Unlock()
	}
}

func currentFake() Host {
	fake.mu.Lock()
	defer fake.mu.Unlock()
	return fake.host
}

// settle turns a fake answer into the host function's return value and
// keeps the pending result, as the real host does.
func settle(res []byte, st abi.Status) int64 {
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if st < 0 {
		fake.pending, fake.has = append([]byte(nil), res...), true
		return int64(st)
	}
	if res == nil {
		fake.pending, fake.has = nil, false
		return 0
	}
	fake.pending, fake.has = append([]byte(nil), res...), true
	return int64(len(res))
}

func fakeResultRead(buf []byte) int32 {
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !fake.has {
		return 0
	}
	n := len(fake.pending)
	if n <= len(buf) {
		copy(buf, fake.pending)
		fake.pending, fake.has = nil, false
	}
	return int32(n)
}

// Log writes a log line at level.
func Log(level int32, msg []byte) {
	if h := currentFake(); h != nil {
		h.Log(level, msg)
		return
	}
	rawLog(level, msg)
}

// ResultRead copies the pending result into buf if it fits and returns its
// length either way; 0 when nothing is pending.
func ResultRead(buf []byte) int32 {
	if currentFake() != nil {
		return fakeResultRead(buf)
	}
	return rawResultRead(buf)
}

// HTTPRequest performs the abi.HTTPRequest JSON in req.
func HTTPRequest(req []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.HTTPRequest(req))
	}
	return rawHTTPRequest(req)
}

// KVGet reads key from the plugin's key/value namespace.
func KVGet(key []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.KVGet(key))
	}
	return rawKVGet(key)
}

// KVPut stores val under key; ttlMS 0 means no expiry.
func KVPut(key, val []byte, ttlMS int64) int64 {
	if h := currentFake(); h != nil {
		return settle(h.KVPut(key, val, ttlMS))
	}
	return rawKVPut(key, val, ttlMS)
}

// KVDelete deletes key.
func KVDelete(key []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.KVDelete(key))
	}
	return rawKVDelete(key)
}

// KVList lists keys per the abi.KVListRequest JSON in req.
func KVList(req []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.KVList(req))
	}
	return rawKVList(req)
}

// ConfigGet reads the config value name.
func ConfigGet(name []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.ConfigGet(name))
	}
	return rawConfigGet(name)
}

// SecretGet reads the secret name.
func SecretGet(name []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.SecretGet(name))
	}
	return rawSecretGet(name)
}

// Progress reports progress of the running call.
func Progress(progress, total float64, msg []byte) int64 {
	if h := currentFake(); h != nil {
		return settle(h.Progress(progress, total, msg))
	}
	return rawProgress(progress, total, msg)
}

// Tools reads the server's tool list as the current caller sees it.
func Tools() int64 {
	if h := currentFake(); h != nil {
		return settle(h.Tools())
	}
	return rawTools()
}
