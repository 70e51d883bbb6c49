// Command noexports is a test plugin that lacks the toolgate_call export.
package main

import "unsafe"

func main() {}

var buf = make([]byte, 64)

//go:wasmexport toolgate_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport toolgate_alloc
func alloc(size int32) int32 { return int32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport toolgate_manifest
func manifest() uint64 { return 0 }
