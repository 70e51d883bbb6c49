// Command bigmanifest is a test plugin whose manifest is larger than
// abi.MaxManifestBytes.
package main

import (
	"strings"
	"unsafe"

	"github.com/toolgate/toolgate/sdk/abi"
)

func main() {}

var (
	buf      = make([]byte, 64)
	manifest = []byte(`{"abi":1,"name":"bigmanifest","version":"1","description":"` + strings.Repeat("x", abi.MaxManifestBytes) + `","tools":[]}`)
)

//go:wasmexport toolgate_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport toolgate_alloc
func alloc(size int32) int32 { return int32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport toolgate_manifest
func manifestExport() uint64 {
	return abi.Pack(uint32(uintptr(unsafe.Pointer(&manifest[0]))), uint32(len(manifest)))
}

//go:wasmexport toolgate_call
func call(ptr, n int32) uint64 { return 0 }
