package hostcall

import (
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
)

// fixed answers every function with the same result and status.
type fixed struct {
	res []byte
	st  abi.Status
}

func (f fixed) Log(int32, []byte)                                    {}
func (f fixed) HTTPRequest([]byte) ([]byte, abi.Status)              { return f.res, f.st }
func (f fixed) KVGet([]byte) ([]byte, abi.Status)                    { return f.res, f.st }
func (f fixed) KVPut(_, _ []byte, _ int64) ([]byte, abi.Status)      { return f.res, f.st }
func (f fixed) KVDelete([]byte) ([]byte, abi.Status)                 { return f.res, f.st }
func (f fixed) KVList([]byte) ([]byte, abi.Status)                   { return f.res, f.st }
func (f fixed) ConfigGet([]byte) ([]byte, abi.Status)                { return f.res, f.st }
func (f fixed) SecretGet([]byte) ([]byte, abi.Status)                { return f.res, f.st }
func (f fixed) Progress(_, _ float64, _ []byte) ([]byte, abi.Status) { return f.res, f.st }
func (f fixed) Tools() ([]byte, abi.Status)                          { return f.res, f.st }

// TestResultRead checks the buffer-plus-limit rule of ABI.md section 7.
func TestResultRead(t *testing.T) {
	defer SetHost(fixed{res: []byte("hello"), st: abi.StatusOK})()
	if got := ResultRead(make([]byte, 8)); got != 0 {
		t.Fatalf("ResultRead with nothing pending = %d, want 0", got)
	}
	if got := KVGet([]byte("k")); got != 5 {
		t.Fatalf("KVGet = %d, want the length 5", got)
	}
	small := make([]byte, 3)
	if got := ResultRead(small); got != 5 || string(small) != "\x00\x00\x00" {
		t.Fatalf("ResultRead into 3 bytes = %d, wrote %q; want 5 and nothing written", got, small)
	}
	buf := make([]byte, 5)
	if got := ResultRead(buf); got != 5 || string(buf) != "hello" {
		t.Fatalf("ResultRead into 5 bytes = %d, %q; want 5, hello", got, buf)
	}
	if got := ResultRead(buf); got != 0 {
		t.Fatalf("ResultRead after copying = %d, want 0 (cleared)", got)
	}
}

func TestStatusLeavesMessagePending(t *testing.T) {
	defer SetHost(fixed{res: []byte("nope"), st: abi.StatusNotFound})()
	if got := ConfigGet([]byte("x")); got != int64(abi.StatusNotFound) {
		t.Fatalf("ConfigGet = %d, want %d", got, abi.StatusNotFound)
	}
	if got := ResultRead(nil); got != 4 {
		t.Fatalf("ResultRead(nil) = %d, want the message length 4", got)
	}
	msg := make([]byte, 4)
	if got := ResultRead(msg); got != 4 || string(msg) != "nope" {
		t.Fatalf("ResultRead = %d, %q; want 4, nope", got, msg)
	}
}

func TestNoResultClearsPending(t *testing.T) {
	restore := SetHost(fixed{res: []byte("left over"), st: abi.StatusOK})
	KVGet([]byte("k"))
	restore()
	defer SetHost(fixed{res: nil, st: abi.StatusOK})()
	if got := KVPut([]byte("k"), []byte("v"), 0); got != 0 {
		t.Fatalf("KVPut = %d, want 0", got)
	}
	if got := ResultRead(make([]byte, 16)); got != 0 {
		t.Fatalf("ResultRead after a function that returns 0 = %d, want 0", got)
	}
}
