//go:build wasip1

//lint:file-ignore U1000 the exports are called by the host through //go:wasmexport, which staticcheck does not see.

package sdk

import (
	"os"
	"unsafe"

	"github.com/toolgate/toolgate/sdk/abi"
)

// The guest exports of sdk/ABI.md. Buffers handed to the host live in
// package variables, so they stay valid (and in place: Go's collector does
// not move objects) until the next call into the guest replaces them.
var (
	// inBuf is the grow-only buffer toolgate_alloc returns.
	inBuf []byte
	// exportDispatcher owns the result buffer toolgate_call returns.
	exportDispatcher dispatcher
	// manifestBuf keeps the manifest toolgate_manifest points at.
	manifestBuf []byte
)

//go:wasmexport toolgate_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport toolgate_alloc
func exportAlloc(size uint32) unsafe.Pointer {
	if size > abi.MaxInputBytes {
		return nil
	}
	if cap(inBuf) > maxKeptBuffer && size <= maxKeptBuffer {
		inBuf = nil
	}
	if uint32(cap(inBuf)) < size || cap(inBuf) == 0 {
		inBuf = make([]byte, max(size, 4096))
	}
	inBuf = inBuf[:cap(inBuf)]
	return unsafe.Pointer(unsafe.SliceData(inBuf))
}

//go:wasmexport toolgate_manifest
func exportManifest() uint64 {
	m, err := Manifest()
	if err != nil {
		// No manifest is a plugin bug; say why on stderr (the host's log)
		// and trap so that the host refuses the plugin.
		_, _ = os.Stderr.WriteString(err.Error() + "\n")
		panic(err)
	}
	manifestBuf = m
	return abi.Pack(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(manifestBuf)))), uint32(len(manifestBuf)))
}

//go:wasmexport toolgate_call
func exportCall(ptr unsafe.Pointer, length uint32) uint64 {
	in := unsafe.Slice((*byte)(ptr), length)
	out := exportDispatcher.handle(in)
	return abi.Pack(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out)))), uint32(len(out)))
}
