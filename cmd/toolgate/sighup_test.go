package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/config"
)

// TestOperatorRuleOnSIGHUP: an operator rule in plugins.toml replacing a
// tool's permissions takes effect on SIGHUP, without a restart, and a
// connected session whose view changed is told so.
func TestOperatorRuleOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm plugins and starts a server")
	}
	dist, err := referencePlugins()
	if err != nil {
		t.Fatal(err)
	}
	// The process must never take a SIGHUP's default action (exit), even
	// if the server under test had stopped listening for it.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	original, err := os.ReadFile(filepath.Join(repoRoot, "plugins.toml"))
	if err != nil {
		t.Fatal(err)
	}
	pluginsFile := filepath.Join(t.TempDir(), "plugins.toml")
	if err := os.WriteFile(pluginsFile, original, 0o600); err != nil {
		t.Fatal(err)
	}
	ls := startLiveServer(t, func(cfg *config.Config) {
		cfg.Plugins.Dir = dist
		cfg.Plugins.Config = pluginsFile
		cfg.Plugins.CacheDir = filepath.Join(os.TempDir(), "toolgate-test-wasm-cache")
	})
	aliceTok, _ := signIn(t, ls.public, "alice@example.com")
	bobTok, _ := signIn(t, ls.public, "bob@example.com")

	// Stateful 2025-11-25 sessions, which hear tools/list_changed.
	connect := func(token string) (*mcp.ClientSession, chan struct{}) {
		changed := make(chan struct{}, 8)
		client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1.0.0"}, &mcp.ClientOptions{
			ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
				select {
				case changed <- struct{}{}:
				default:
				}
			},
		})
		tr := &mcp.StreamableClientTransport{Endpoint: ls.public + "/mcp", HTTPClient: bearerClient(token), MaxRetries: -1}
		cs, err := client.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs, changed
	}
	alice, _ := connect(aliceTok)
	bob, bobChanged := connect(bobTok)
	if got := listTools(t, bob); slices.Contains(got, "generateImage") {
		t.Fatalf("before the rule, bob lists %v", got)
	}

	// The operator opens generateImage to members only: no permission
	// needed, role member required.
	const header = "[plugins.generateimage.tools.generateImage]\n"
	if !strings.Contains(string(original), header) {
		t.Fatalf("plugins.toml has no %q table", strings.TrimSpace(header))
	}
	edited := strings.Replace(string(original), header, header+"permissions = []\nroles = [\"member\"]\n", 1)
	if err := os.WriteFile(pluginsFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bobChanged:
	case <-time.After(30 * time.Second):
		t.Fatal("bob's session was not told that his tool list changed")
	}
	if got, want := listTools(t, bob), []string{"add", "generateImage", "whoami"}; !slices.Equal(got, want) {
		t.Errorf("after the rule, bob lists %v, want %v", got, want)
	}
	if got, want := listTools(t, alice), []string{"add", "whoami"}; !slices.Equal(got, want) {
		t.Errorf("after the rule, alice (admin) lists %v, want %v", got, want)
	}
	if res := callTool(t, bob, "generateImage", map[string]any{"prompt": "a kite"}); res.IsError {
		t.Errorf("bob's generateImage after the rule: %s", contentText(res))
	}
	if res := callTool(t, alice, "generateImage", map[string]any{"prompt": "a kite"}); !res.IsError || !strings.Contains(contentText(res), "role member") {
		t.Errorf("alice's generateImage after the rule = %q (IsError %v), want a refusal naming role member", contentText(res), res.IsError)
	}
}

func bearerClient(token string) *http.Client {
	return &http.Client{Transport: bearerTransport{token}}
}
