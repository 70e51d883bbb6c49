package main

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/config"
)

// referencePlugins builds plugins/add, whoami and generateimage to wasm
// once per test binary and returns the folder holding them.
var referencePlugins = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "toolgate-cmd-plugins-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"add", "whoami", "generateimage"} {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, name+".wasm"), "./plugins/"+name)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", &buildError{name: name, out: string(out), err: err}
		}
	}
	return dir, nil
})

type buildError struct {
	name, out string
	err       error
}

func (e *buildError) Error() string {
	return "build " + e.name + ".wasm: " + e.err.Error() + "\n" + e.out
}

// repoRoot is the module root, two levels above this package.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

// bearerTransport adds a token to every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestReferencePluginsThroughSignIn is the product end to end: the
// composed development server with the three reference plugins and the
// repository's plugins.toml, users signed in through the OAuth flow, and
// the go-sdk MCP client over both transports. alice (image_generation)
// sees and uses generateImage; bob does not see it, is refused when he
// calls it anyway, and whoami tells each of them why.
func TestReferencePluginsThroughSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dist
		cfg.Plugins.Config = filepath.Join(repoRoot, "plugins.toml")
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
	})
	for _, transport := range []string{"mcp", "sse"} {
		t.Run(transport, func(t *testing.T) {
			// Each transport is its own protected resource: a client
			// discovers from it and gets a token for it.
			alice, _ := signInAt(t, ls.public, "/"+transport, "alice@example.com")
			bob, _ := signInAt(t, ls.public, "/"+transport, "bob@example.com")
			connect := func(token string) *mcp.ClientSession {
				hc := &http.Client{Transport: bearerTransport{token}}
				var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: ls.public + "/mcp", HTTPClient: hc, MaxRetries: -1}
				if transport == "sse" {
					tr = &mcp.SSEClientTransport{Endpoint: ls.public + "/sse", HTTPClient: hc}
				}
				cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1.0.0"}, nil).Connect(context.Background(), tr, nil)
				if err != nil {
					t.Fatalf("connect over %s: %v", transport, err)
				}
				t.Cleanup(func() { cs.Close() })
				return cs
			}
			as, bs := connect(alice), connect(bob)

			if got, want := listTools(t, as), []string{"add", "generateImage", "whoami"}; !slices.Equal(got, want) {
				t.Errorf("alice lists %v, want %v", got, want)
			}
			if got, want := listTools(t, bs), []string{"add", "whoami"}; !slices.Equal(got, want) {
				t.Errorf("bob lists %v, want %v", got, want)
			}

			res := callTool(t, as, "add", map[string]any{"a": 2, "b": 40})
			if res.IsError || contentText(res) != "42" {
				t.Errorf("add(2, 40) = %q (IsError %v), want 42", contentText(res), res.IsError)
			}

			res = callTool(t, as, "generateImage", map[string]any{"prompt": "a lighthouse at dusk", "steps": 4})
			if res.IsError {
				t.Fatalf("alice generateImage: tool error %q", contentText(res))
			}
			var img *mcp.ImageContent
			for _, c := range res.Content {
				if ic, ok := c.(*mcp.ImageContent); ok {
					img = ic
				}
			}
			if img == nil || img.MIMEType != "image/png" {
				t.Fatalf("alice generateImage: no PNG image content in %+v", res.Content)
			}
			decoded, err := png.Decode(bytes.NewReader(img.Data))
			if err != nil {
				t.Fatalf("generateImage's image does not decode as PNG: %v", err)
			}
			if b := decoded.Bounds(); b.Dx() != 512 || b.Dy() != 512 {
				t.Errorf("image is %dx%d, want 512x512", b.Dx(), b.Dy())
			}

			res = callTool(t, bs, "generateImage", map[string]any{"prompt": "a lighthouse at dusk"})
			if !res.IsError || !strings.Contains(contentText(res), "image_generation") {
				t.Errorf("bob generateImage = %q (IsError %v), want a refusal naming image_generation", contentText(res), res.IsError)
			}

			who := contentText(callTool(t, as, "whoami", map[string]any{}))
			for _, want := range []string{"alice@example.com", "admin", "image_generation", "generateImage"} {
				if !strings.Contains(who, want) {
					t.Errorf("alice's whoami lacks %q:\n%s", want, who)
				}
			}
			who = contentText(callTool(t, bs, "whoami", map[string]any{}))
			for _, want := range []string{"bob@example.com", "member", "generateImage", "image_generation"} {
				if !strings.Contains(who, want) {
					t.Errorf("bob's whoami lacks %q:\n%s", want, who)
				}
			}
		})
	}
}

func listTools(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func contentText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}
