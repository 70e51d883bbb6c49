// Command gated is the test plugin of core/gate and core/mcpserver: a tool
// that needs a permission and returns an image, open tools with text,
// structured and error results, a slow tool that reports progress, one
// that crashes, and one that reads the caller's view of the tool list.
//
// Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gated.wasm ./core/gate/testdata/gated
//
// Grants the tests give it in plugins.toml terms: progress = true,
// list_tools = true.
package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/toolgate/toolgate/sdk"
)

// pixel is a 1×1 PNG.
var pixel = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
	0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
	0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
}

// PaintArgs are paint's arguments.
type PaintArgs struct {
	Prompt string `json:"prompt" jsonschema:"what to paint"`
}

// EchoArgs are echo's arguments.
type EchoArgs struct {
	Message string `json:"message" jsonschema:"the text to return"`
	Fail    bool   `json:"fail,omitempty" jsonschema:"answer with a tool error instead"`
}

// EchoResult is echo's structured result.
type EchoResult struct {
	Message string `json:"message"`
	Length  int    `json:"length"`
}

// SlowArgs are slow's arguments.
type SlowArgs struct {
	Steps int `json:"steps" jsonschema:"how many 20 ms steps to take"`
}

// NoArgs is the arguments of tools that take none.
type NoArgs struct{}

func init() {
	sdk.Plugin("gated", "1.0.0", "Test tools for the permission gate.", sdk.UseProgress(), sdk.UseTools())
	sdk.Tool("paint", "Paints a one-pixel picture.", paint, sdk.RequirePermissions("image_generation"))
	sdk.Tool("echo", "Returns its message.", echo, sdk.Output[EchoResult]())
	sdk.Tool("slow", "Takes its time and reports progress.", slow)
	sdk.Tool("crash", "Exits the instance.", crash)
	sdk.Tool("access", "Lists the tools the caller may use.", access)
}

func paint(_ context.Context, args PaintArgs) (sdk.Result, error) {
	return sdk.Image(pixel, "image/png").WithText("painted " + args.Prompt), nil
}

func echo(_ context.Context, args EchoArgs) (sdk.Result, error) {
	if args.Fail {
		return sdk.ErrorResult("echo was asked to fail"), nil
	}
	return sdk.Structured(EchoResult{Message: args.Message, Length: len(args.Message)}), nil
}

func slow(ctx context.Context, args SlowArgs) (sdk.Result, error) {
	if args.Steps <= 0 {
		return sdk.Result{}, errors.New("steps must be positive")
	}
	for i := range args.Steps {
		if err := sdk.Progress(ctx, float64(i+1), float64(args.Steps), "step"); err != nil {
			return sdk.Result{}, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sdk.Text("done"), nil
}

func crash(context.Context, NoArgs) (sdk.Result, error) {
	os.Exit(3)
	return sdk.Result{}, nil
}

func access(ctx context.Context, _ NoArgs) (sdk.Result, error) {
	tools, err := sdk.Tools(ctx)
	if err != nil {
		return sdk.Result{}, err
	}
	var lines []string
	for _, t := range tools {
		if t.Allowed {
			lines = append(lines, t.Name+": allowed")
		} else {
			lines = append(lines, t.Name+": needs "+t.Missing)
		}
	}
	return sdk.Text(strings.Join(lines, "\n")), nil
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
