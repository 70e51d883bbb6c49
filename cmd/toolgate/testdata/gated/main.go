// Command gated is the access-control test plugin of cmd/toolgate's
// access_test.go: nine tools that do nothing but say who ran them, so the
// test can tell an allowed call from a refused one. Three declare
// permissions in the manifest (manifest_perm keeps them, the operator
// replaces legacy_perm's and adds a role to manifest_plus's); the others
// get their rules from the plugins.toml the test writes. See accessTools
// in access_test.go.
//
// Build (the test does it):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gated.wasm ./cmd/toolgate/testdata/gated
package main

import (
	"context"

	"github.com/toolgate/toolgate/sdk"
)

// noArgs is every tool's (empty) input.
type noArgs struct{}

func init() {
	sdk.Plugin("gated", "1.0.0", "Tools guarded by every kind of access rule.")
	for _, name := range []string{"open", "perm_all", "perm_any", "role_only", "org_only", "combo"} {
		sdk.Tool(name, "Says who ran it.", ran(name))
	}
	// Rules from the manifest: one kept as declared, one the operator
	// replaces in plugins.toml.
	sdk.Tool("manifest_perm", "Says who ran it.", ran("manifest_perm"), sdk.RequirePermissions("reports:read"))
	sdk.Tool("legacy_perm", "Says who ran it.", ran("legacy_perm"), sdk.RequirePermissions("legacy:admin"))
	sdk.Tool("manifest_plus", "Says who ran it.", ran("manifest_plus"), sdk.RequirePermissions("reports:read"))
}

// ran returns a handler answering "<tool> ran for <email>".
func ran(tool string) sdk.Handler[noArgs] {
	return func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		return sdk.Text(tool + " ran for " + sdk.Caller(ctx).Email), nil
	}
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
