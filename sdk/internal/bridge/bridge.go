// Package bridge lets sdk/sdktest reach the sdk's call path without making
// it part of the sdk's public API. The sdk fills the variables in its init.
package bridge

// NewDispatcher returns a function that runs one call: it takes a CallInput
// JSON and returns the CallResult JSON, valid until the function's next use.
// Each dispatcher owns its reused buffers.
var NewDispatcher func() func(in []byte) []byte
