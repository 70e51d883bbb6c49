package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/config"
)

// tsclientDir holds the TypeScript client (testdata/tsclient/client.mjs)
// and its pinned npm dependencies. It is absolute because
// startLiveServer changes the working directory.
var tsclientDir = filepath.Join(repoRoot, "cmd", "toolgate", "testdata", "tsclient")

// tsclientTimeout bounds one run of the TypeScript client: sign-in, a
// refresh and four tool calls against a loopback server.
const tsclientTimeout = 2 * time.Minute

// tsclientSummary is what client.mjs prints on success.
type tsclientSummary struct {
	ProtocolVersion string   `json:"protocolVersion"`
	Tools           []string `json:"tools"`
	Add             string   `json:"add"`
	Refreshed       bool     `json:"refreshed"`
	AddAfterRefresh *string  `json:"addAfterRefresh"`
	GenerateImage   struct {
		IsError  bool    `json:"isError"`
		Text     string  `json:"text"`
		MIMEType *string `json:"mimeType"`
		Bytes    int     `json:"bytes"`
	} `json:"generateImage"`
}

// requireTSClient returns the node executable, or skips the test when node
// or the client's node_modules are missing. Under CI (CI set) it fails
// instead: there the interop check must run.
func requireTSClient(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format+"; run make tsclient-deps (CI is set, so this is a failure, not a skip)", args...)
		}
		t.Skipf(format+"; run make tsclient-deps to run this test", args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed (%v): install Node.js 20 and npm", err)
	}
	sdk := filepath.Join(tsclientDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
	if _, err := os.Stat(sdk); err != nil {
		missing("the TypeScript client's dependencies are not installed (%v)", err)
	}
	return node
}

// runTSClient runs client.mjs as user against public and decodes its
// summary.
func runTSClient(t *testing.T, node, public, user string) tsclientSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), tsclientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs", public, user)
	cmd.Dir = tsclientDir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node client.mjs %s did not finish within %v\nstderr:\n%s", user, tsclientTimeout, stderr.String())
	}
	if err != nil {
		t.Fatalf("node client.mjs %s: %v\nstdout:\n%s\nstderr:\n%s", user, err, stdout.String(), stderr.String())
	}
	t.Logf("node client.mjs %s took %v: %s", user, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(stdout.Bytes()))
	var sum tsclientSummary
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sum); err != nil {
		t.Fatalf("client.mjs %s printed no summary: %v\nstderr:\n%s", user, err, stderr.String())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("client.mjs %s printed more than one summary", user)
	}
	return sum
}

// TestTypeScriptClient is the interoperability check: the official
// TypeScript MCP client (@modelcontextprotocol/sdk, run by node) signs in
// through toolgate's OAuth flow with its own OAuthClientProvider machinery
// (discovery from the 401, dynamic registration, PKCE, code exchange,
// refresh) and calls the reference plugins over streamable HTTP. alice
// (admin, image_generation) gets an image; bob neither sees generateImage
// nor may call it.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node, builds wasm plugins and starts a server")
	}
	node := requireTSClient(t)
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dist
		cfg.Plugins.Config = filepath.Join(repoRoot, "plugins.toml")
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
	})
	tests := []struct {
		user      string
		wantTools []string
		wantImage bool
	}{
		{"alice@example.com", []string{"add", "generateImage", "whoami"}, true},
		{"bob@example.com", []string{"add", "whoami"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			sum := runTSClient(t, node, ls.public, tt.user)
			if sum.ProtocolVersion == "" {
				t.Error("no protocol version was negotiated")
			}
			if !slices.Equal(sum.Tools, tt.wantTools) {
				t.Errorf("tools/list = %v, want %v", sum.Tools, tt.wantTools)
			}
			if sum.Add != "5" {
				t.Errorf("add(2, 3) = %q, want 5", sum.Add)
			}
			if !sum.Refreshed {
				t.Error("the SDK's auth() did not refresh the tokens to a new access token")
			}
			if sum.AddAfterRefresh == nil || *sum.AddAfterRefresh != "5" {
				t.Errorf("add(2, 3) with the refreshed token = %v, want 5", sum.AddAfterRefresh)
			}
			img := sum.GenerateImage
			if tt.wantImage {
				if img.IsError || img.MIMEType == nil || *img.MIMEType != "image/png" || img.Bytes <= 1000 {
					t.Errorf("generateImage = isError %v, text %q, mimeType %v, %d bytes; want a PNG over 1000 bytes", img.IsError, img.Text, img.MIMEType, img.Bytes)
				}
			} else if !img.IsError || !strings.Contains(img.Text, "image_generation") || img.Bytes != 0 {
				t.Errorf("generateImage = isError %v, text %q, %d image bytes; want a refusal naming image_generation", img.IsError, img.Text, img.Bytes)
			}
		})
	}
}
