package sdk

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/toolgate/toolgate/sdk/internal/jsonx"
)

// The sdk's own tests register one plugin with tools covering the call
// path's cases.

type testAddArgs struct {
	A float64 `json:"a" jsonschema:"first addend"`
	B float64 `json:"b" jsonschema:"second addend"`
}

type testAddResult struct {
	Sum float64 `json:"sum"`
}

type testEchoArgs struct {
	Text  string   `json:"text"`
	Steps int      `json:"steps,omitempty" schema:"minimum=4,maximum=8,default=4"`
	Tags  []string `json:"tags,omitempty"`
	Mode  string   `json:"mode,omitempty" schema:"enum=fast|slow"`
}

type testEmptyArgs struct{}

func init() {
	Plugin("sdktest", "0.0.1", "The sdk's own test plugin.", UseKV(), AllowHTTP("api.example.com"))
	Tool("test_add", "Adds.", func(_ context.Context, a testAddArgs) (Result, error) {
		sum := a.A + a.B
		return Text(strconv.FormatFloat(sum, 'g', -1, 64)).WithStructured(testAddResult{Sum: sum}), nil
	}, Output[testAddResult]())
	Tool("test_echo", "Echoes.", func(ctx context.Context, a testEchoArgs) (Result, error) {
		return Structured(a), nil
	})
	Tool("test_fail", "Fails.", func(context.Context, testEmptyArgs) (Result, error) {
		return Result{}, errors.New("the printer is on fire")
	})
	Tool("test_panic", "Panics.", func(context.Context, testEmptyArgs) (Result, error) {
		panic("boom")
	})
	Tool("test_image", "Draws.", func(context.Context, testEmptyArgs) (Result, error) {
		return Image([]byte{0x89, 'P', 'N', 'G'}, "image/png").WithText("a tiny picture"), nil
	}, RequirePermissions("image_generation"))
	Tool("test_whoami", "Says who.", func(ctx context.Context, _ testEmptyArgs) (Result, error) {
		c := Caller(ctx)
		return Text(fmt.Sprintf("%s %s %v %s", c.UserID, c.Role, c.Permissions, CallID(ctx))), nil
	})
	Tool("test_bad_structured", "Returns a non-object.", func(context.Context, testEmptyArgs) (Result, error) {
		return Text("x").WithStructured(42), nil
	})
	Tool("test_tool_error", "Explicit tool error.", func(context.Context, testEmptyArgs) (Result, error) {
		return Errorf("no such city %q", "Atlantis"), nil
	})
}

func jsonxNew(b []byte) jsonx.Scanner { return jsonx.New(b) }
