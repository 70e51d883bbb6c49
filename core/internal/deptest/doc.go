// Package deptest holds the test that enforces the dependency direction
// DESIGN.md sets out: sdk/... and plugins/... import only the standard
// library and sdk/...; core/store imports only the standard library;
// core/store/internal/... imports only the standard library and
// core/store; core/internal/testutil is imported by tests only; and
// nothing but cmd/toolgate imports core/server or cmd/....
//
// It has no API; run it with go test.
package deptest
