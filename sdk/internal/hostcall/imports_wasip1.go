//go:build wasip1

package hostcall

import "unsafe"

// The raw host functions of toolgate/v1 (see sdk/ABI.md). Pointers and
// lengths are i32, statuses i64.

//go:wasmimport toolgate/v1 log
func importLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport toolgate/v1 result_read
func importResultRead(ptr unsafe.Pointer, limit uint32) uint32

//go:wasmimport toolgate/v1 http_request
func importHTTPRequest(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 kv_get
func importKVGet(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 kv_put
func importKVPut(kptr unsafe.Pointer, kn uint32, vptr unsafe.Pointer, vn uint32, ttlMS int64) int64

//go:wasmimport toolgate/v1 kv_delete
func importKVDelete(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 kv_list
func importKVList(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 config_get
func importConfigGet(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 secret_get
func importSecretGet(ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 progress
func importProgress(progress, total float64, ptr unsafe.Pointer, n uint32) int64

//go:wasmimport toolgate/v1 tools
func importTools() int64

// ptrLen returns the address and length of b; an empty slice is passed as
// (0, 0), which the host reads as no bytes.
func ptrLen(b []byte) (unsafe.Pointer, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func rawLog(level int32, msg []byte) {
	p, n := ptrLen(msg)
	importLog(level, p, n)
}

func rawResultRead(buf []byte) int32 {
	p, n := ptrLen(buf)
	return int32(importResultRead(p, n))
}

func rawHTTPRequest(req []byte) int64 {
	p, n := ptrLen(req)
	return importHTTPRequest(p, n)
}

func rawKVGet(key []byte) int64 {
	p, n := ptrLen(key)
	return importKVGet(p, n)
}

func rawKVPut(key, val []byte, ttlMS int64) int64 {
	kp, kn := ptrLen(key)
	vp, vn := ptrLen(val)
	return importKVPut(kp, kn, vp, vn, ttlMS)
}

func rawKVDelete(key []byte) int64 {
	p, n := ptrLen(key)
	return importKVDelete(p, n)
}

func rawKVList(req []byte) int64 {
	p, n := ptrLen(req)
	return importKVList(p, n)
}

func rawConfigGet(name []byte) int64 {
	p, n := ptrLen(name)
	return importConfigGet(p, n)
}

func rawSecretGet(name []byte) int64 {
	p, n := ptrLen(name)
	return importSecretGet(p, n)
}

func rawProgress(progress, total float64, msg []byte) int64 {
	p, n := ptrLen(msg)
	return importProgress(progress, total, p, n)
}

func rawTools() int64 { return importTools() }
