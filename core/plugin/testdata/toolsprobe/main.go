// Command toolsprobe is a test plugin that calls the tools host function
// without declaring the tools capability, so the host must refuse the call
// even when plugins.toml says list_tools = true: a grant counts only for
// what the manifest asks for.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o toolsprobe.wasm .
package main

import (
	"context"
	"strconv"

	"github.com/toolgate/toolgate/sdk"
)

type noArgs struct{}

func init() {
	sdk.Plugin("toolsprobe", "1.0.0", "Calls the tools host function undeclared.")
	sdk.Tool("probe", "Counts the tools the host lists.", func(ctx context.Context, _ noArgs) (sdk.Result, error) {
		tools, err := sdk.Tools(ctx)
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Text(strconv.Itoa(len(tools))), nil
	})
}

func main() {}
