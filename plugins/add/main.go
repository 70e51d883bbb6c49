// Command add is the smallest toolgate plugin: one tool, add, that adds two
// numbers and returns the sum as text and as structured content. It needs
// no capabilities and no permissions.
//
// Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o add.wasm ./plugins/add
package main

import (
	"context"
	"strconv"

	"github.com/toolgate/toolgate/sdk"
)

// AddArgs are the arguments of add.
type AddArgs struct {
	A float64 `json:"a" jsonschema:"the first addend"`
	B float64 `json:"b" jsonschema:"the second addend"`
}

// AddResult is add's structured result.
type AddResult struct {
	Sum float64 `json:"sum" jsonschema:"a + b"`
}

func init() {
	sdk.Plugin("add", "1.0.0", "Adds two numbers.")
	sdk.Tool("add", "Add two numbers and return their sum.", add,
		sdk.Title("Add"),
		sdk.Output[AddResult](),
		sdk.Annotations(sdk.ToolAnnotations{ReadOnly: true, Idempotent: true}))
}

func add(_ context.Context, args AddArgs) (sdk.Result, error) {
	sum := args.A + args.B
	return sdk.Text(strconv.FormatFloat(sum, 'g', -1, 64)).WithStructured(AddResult{Sum: sum}), nil
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
