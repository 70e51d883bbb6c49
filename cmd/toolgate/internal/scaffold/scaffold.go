// Package scaffold writes a new toolgate plugin: the folder behind
// `toolgate plugin new NAME`, with a main.go using sdk, a test using
// sdk/sdktest, and a README saying how to build, test, install and grant
// it. The result builds natively and for GOOS=wasip1 GOARCH=wasm, and its
// test passes.
package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"text/template"
)

// ErrInvalidName is wrapped by Generate for a name it cannot use.
var ErrInvalidName = errors.New("invalid plugin name")

// MaxNameLen is the longest plugin name the host accepts.
const MaxNameLen = 64

// ValidateName checks a plugin name: 1 to 64 characters of a-z, 0-9, '_'
// and '-', starting with a letter (the host's plugin-name rule, which also
// makes a valid MCP tool name).
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w %q: want 1 to %d characters", ErrInvalidName, name, MaxNameLen)
	}
	if name[0] < 'a' || name[0] > 'z' {
		return fmt.Errorf("%w %q: must start with a lowercase letter", ErrInvalidName, name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only a-z, 0-9, '_' and '-' are allowed", ErrInvalidName, name)
		}
	}
	return nil
}

// Generate creates dir (which must not exist, or be an empty directory) and
// writes a plugin named name into it: main.go, main_test.go and README.md.
// The plugin serves one tool, also called name. It writes nothing if name
// is invalid or dir is in use.
func Generate(dir, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("scaffold: %s is not empty; choose a new folder", dir)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("scaffold: %w", err)
	}
	files := make(map[string][]byte, len(templates))
	for file, tmpl := range templates {
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data{Name: name, Dir: filepath.ToSlash(dir)}); err != nil {
			return fmt.Errorf("scaffold: render %s: %w", file, err)
		}
		out := b.Bytes()
		if filepath.Ext(file) == ".go" {
			if out, err = format.Source(out); err != nil {
				return fmt.Errorf("scaffold: format %s: %w", file, err)
			}
		}
		files[file] = out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scaffold: %w", err)
	}
	for _, file := range []string{"main.go", "main_test.go", "README.md"} {
		if err := os.WriteFile(filepath.Join(dir, file), files[file], 0o644); err != nil {
			return fmt.Errorf("scaffold: %w", err)
		}
	}
	return nil
}

type data struct {
	Name string // the plugin and tool name
	Dir  string // the folder, as given
}

var templates = map[string]*template.Template{
	"main.go":      template.Must(template.New("main.go").Parse(mainTemplate)),
	"main_test.go": template.Must(template.New("main_test.go").Parse(testTemplate)),
	"README.md":    template.Must(template.New("README.md").Parse(readmeTemplate)),
}

const mainTemplate = `// Command {{.Name}} is a toolgate plugin. Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o {{.Name}}.wasm .
package main

import (
	"context"
	"fmt"

	"github.com/toolgate/toolgate/sdk"
)

// Args are the tool's arguments. The tool's input schema is derived from
// this struct: json tags name the members, jsonschema tags describe them,
// and schema tags add constraints (see the sdk package documentation).
type Args struct {
	Name  string ` + "`" + `json:"name" jsonschema:"who to greet" schema:"minLength=1,maxLength=100"` + "`" + `
	Times int    ` + "`" + `json:"times,omitempty" jsonschema:"how many times" schema:"minimum=1,maximum=3,default=1"` + "`" + `
}

// Output is the tool's structured result.
type Output struct {
	Greeting string ` + "`" + `json:"greeting"` + "`" + `
	Caller   string ` + "`" + `json:"caller"` + "`" + `
}

func init() {
	// Declare capabilities here when you need them, for example
	// sdk.AllowHTTP("api.example.com") or sdk.UseKV(); the operator must
	// grant each in plugins.toml.
	sdk.Plugin("{{.Name}}", "0.1.0", "Greets people; describe what {{.Name}} does here.")
	sdk.Tool("{{.Name}}", "Greets someone, to show the shape of a tool.", run,
		sdk.Output[Output]())
}

func run(ctx context.Context, args Args) (sdk.Result, error) {
	caller := sdk.Caller(ctx)
	greeting := ""
	for i := range args.Times {
		if i > 0 {
			greeting += " "
		}
		greeting += fmt.Sprintf("Hello, %s!", args.Name)
	}
	sdk.LogInfo(ctx, "greeted", "times", args.Times)
	return sdk.Text(greeting).WithStructured(Output{Greeting: greeting, Caller: caller.UserID}), nil
}

// main is not run: the host initialises the module and calls its exports.
func main() {}
`

const testTemplate = `package main

import (
	"encoding/json"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

func TestTool(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{Caller: abi.Caller{UserID: "user_1"}})
	tests := []struct {
		name string
		args string
		want string
	}{
		{"once by default", ` + "`" + `{"name":"Ada"}` + "`" + `, "Hello, Ada!"},
		{"twice", ` + "`" + `{"name":"Ada","times":2}` + "`" + `, "Hello, Ada! Hello, Ada!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.Call("{{.Name}}", tt.args)
			if res.Error != nil || res.IsError {
				t.Fatalf("call failed: %s", res.Raw)
			}
			if got := res.Text(); got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
			var out Output
			if err := json.Unmarshal(res.Structured, &out); err != nil || out.Caller != "user_1" {
				t.Errorf("structured = %s (%v), want the caller user_1", res.Structured, err)
			}
		})
	}
}

func TestBadArguments(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{})
	for _, args := range []string{` + "`" + `{}` + "`" + `, ` + "`" + `{"name":""}` + "`" + `, ` + "`" + `{"name":"Ada","times":9}` + "`" + `} {
		res := p.Call("{{.Name}}", args)
		if res.Error == nil || res.Error.Code != abi.ErrInvalidArguments {
			t.Errorf("call with %s = %s, want invalid_arguments", args, res.Raw)
		}
	}
}
`

const readmeTemplate = `# {{.Name}}

A toolgate plugin, generated by ` + "`toolgate plugin new {{.Name}}`" + `. It serves one tool,
` + "`{{.Name}}`" + `, that greets someone: replace it with yours in ` + "`main.go`" + `. The SDK is
documented in ` + "`sdk/README.md`" + ` and the ABI in ` + "`sdk/ABI.md`" + `.

## Build

` + "```sh" + `
cd {{.Dir}}
GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o {{.Name}}.wasm .
` + "```" + `

The folder must be inside a Go module that can import ` + "`github.com/toolgate/toolgate/sdk`" + `:
the toolgate repository itself (for example ` + "`plugins/{{.Name}}`" + `), or your own module
after ` + "`go get github.com/toolgate/toolgate`" + `.

## Test

` + "```sh" + `
go test .
` + "```" + `

The test runs the tool natively through ` + "`sdk/sdktest`" + `, with a fake caller and fake
grants. ` + "`toolgate plugin inspect {{.Name}}.wasm`" + ` prints the manifest the host will read.

## Install

Copy ` + "`{{.Name}}.wasm`" + ` into toolgate's drop-in folder (` + "`plugins/dist/`" + ` by
default). A running ` + "`toolgate serve`" + ` loads it without a restart and tells connected
clients that the tool list changed.

## Grant

A plugin with no entry in ` + "`plugins.toml`" + ` loads with no grants (it can only log), if
` + "`drop_in = \"allow\"`" + `. Anything it declares in ` + "`sdk.Plugin`" + ` must be granted, or
it is refused with a message naming the line to add:

` + "```toml" + `
[plugins.{{.Name}}]
timeout = "10s"
# http = ["api.example.com"]          # for sdk.AllowHTTP("api.example.com")
# kv = true                           # for sdk.UseKV()
# config = { units = "metric" }       # for sdk.UseConfig("units")
# secrets = { api_key = "API_KEY" }   # for sdk.UseSecrets("api_key"): env var holding it
# progress = true                     # for sdk.UseProgress()

[plugins.{{.Name}}.tools.{{.Name}}]
# permissions = ["some_permission"]   # callers must hold all of these
` + "```" + `
`
