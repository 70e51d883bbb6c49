// Command secretuser is a test plugin for core/server's secrets test: its
// one tool, "check", reads the secret "token" (granted in plugins.toml from
// an environment variable) and logs at debug and info level without it, so
// the test sees plugin log lines go through the server's logger while the
// secret never does.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o secretuser.wasm .
package main

import (
	"context"
	"strconv"

	"github.com/toolgate/toolgate/sdk"
)

// CheckArgs are check's arguments: none.
type CheckArgs struct{}

func init() {
	sdk.Plugin("secretuser", "1.0.0", "Reads a granted secret.", sdk.UseSecrets("token"))
	sdk.Tool("check", "Reads the secret token and says how long it is.", check)
}

func check(ctx context.Context, _ CheckArgs) (sdk.Result, error) {
	tok, err := sdk.Secret(ctx, "token")
	if err != nil {
		return sdk.Errorf("read the secret: %v", err), nil
	}
	sdk.LogDebug(ctx, "secretuser: read the secret", "bytes", len(tok))
	sdk.LogInfo(ctx, "secretuser: check answered")
	return sdk.Text("the secret has " + strconv.Itoa(len(tok)) + " bytes"), nil
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
