package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/plugin/plugintest"
	"github.com/toolgate/toolgate/sdk/abi"
)

// The reference plugins under plugins/ are compiled to WebAssembly and run
// through the real host here: their own tests (natively, through
// sdk/sdktest) may not import core/.

// buildReference builds plugins/<name> as a wasip1 reactor into a
// temporary directory.
func buildReference(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "../../plugins/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugins/%s: %v\n%s", name, err, b)
	}
	return out
}

// rootEntry returns the plugin's entry in the repository's plugins.toml, so
// the tests load the plugins with exactly the grants operators get.
func rootEntry(t *testing.T, name string) plugin.PluginEntry {
	t.Helper()
	f, err := plugin.ReadPluginsFile("../../plugins.toml")
	if err != nil {
		t.Fatalf("the repository's plugins.toml: %v", err)
	}
	e, ok := f.Plugins[name]
	if !ok {
		t.Fatalf("plugins.toml has no [plugins.%s]", name)
	}
	return e
}

func TestReferenceWhoami(t *testing.T) {
	wasm := buildReference(t, "whoami")
	entry := rootEntry(t, "whoami")
	if !entry.ListTools {
		t.Fatal("plugins.toml does not grant whoami list_tools")
	}
	bob := abi.Caller{UserID: "user_bob", Email: "bob@example.com", OrganizationID: "org_acme", Role: "member", Permissions: []string{}}
	h := plugintest.New(t, wasm, plugintest.Options{Entry: entry, Caller: &bob})

	server := []abi.ToolAccess{ // unsorted on purpose: the host sorts
		{Name: "whoami", Plugin: "whoami", Allowed: true},
		{Name: "generateImage", Plugin: "generateimage", Description: "Generate an image.", Missing: "permission image_generation"},
		{Name: "add", Plugin: "add", Allowed: true},
	}
	tests := []struct {
		name      string
		tools     func() []abi.ToolAccess
		wantNames []string
		wantText  []string
	}{
		{"the gate's list", func() []abi.ToolAccess { return slices.Clone(server) }, []string{"add", "generateImage", "whoami"},
			[]string{"You are bob@example.com (user user_bob).", "Role: member",
				"Tools you can use:\n- add (add)\n- whoami (whoami)\n",
				"Tools you cannot use:\n- generateImage (generateimage): missing permission image_generation\n"}},
		{"no list from the gate", nil, nil, []string{"Tools: none on this server."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.Host().Call(context.Background(), "whoami", json.RawMessage(`{}`), bob, plugin.CallOptions{CallID: "ref", Tools: tt.tools})
			if err != nil || res.IsError {
				t.Fatalf("whoami = %+v, %v", res, err)
			}
			text := res.Content[0].Text
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("text does not contain %q:\n%s", w, text)
				}
			}
			var out struct {
				UserID string `json:"user_id"`
				Tools  []struct {
					Name string `json:"name"`
				} `json:"tools"`
			}
			if err := json.Unmarshal(res.Structured, &out); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range out.Tools {
				names = append(names, tool.Name)
			}
			if out.UserID != "user_bob" || !slices.Equal(names, tt.wantNames) {
				t.Errorf("structured = %s, want user_bob and tools %v", res.Structured, tt.wantNames)
			}
		})
	}

	t.Run("refused without list_tools", func(t *testing.T) {
		denied := entry
		denied.ListTools = false
		denied.Path = wasm
		_, err := plugin.New(context.Background(), plugin.Config{
			CacheDir:  filepath.Join(os.TempDir(), "toolgate-plugintest-cache"),
			Plugins:   &plugin.PluginsFile{DropIn: plugin.DropInDeny, Plugins: map[string]plugin.PluginEntry{"whoami": denied}, Name: "plugins.toml"},
			DropInDir: t.TempDir(),
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil || !strings.Contains(err.Error(), "add  list_tools = true  under [plugins.whoami]") {
			t.Fatalf("load without the grant: %v, want a refusal naming list_tools = true", err)
		}
	})
}

// TestToolsNotDeclared checks that list_tools grants nothing to a plugin
// whose manifest does not ask for the tools capability.
func TestToolsNotDeclared(t *testing.T) {
	wasm := filepath.Join(t.TempDir(), "toolsprobe.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "./testdata/toolsprobe")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/toolsprobe: %v\n%s", err, b)
	}
	h := plugintest.New(t, wasm, plugintest.Options{Entry: plugin.PluginEntry{ListTools: true}})
	res, err := h.Host().Call(context.Background(), "probe", json.RawMessage(`{}`), abi.Caller{UserID: "u", Permissions: []string{}},
		plugin.CallOptions{Tools: func() []abi.ToolAccess { return []abi.ToolAccess{{Name: "add", Plugin: "add", Allowed: true}} }})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].Text, `tools is not granted to plugin "toolsprobe"`) {
		t.Fatalf("probe = %+v, %v; want a not-granted tool error", res, err)
	}
}

func TestReferenceGenerateImage(t *testing.T) {
	wasm := buildReference(t, "generateimage")
	entry := rootEntry(t, "generateimage")
	alice := abi.Caller{UserID: "user_alice", Role: "admin", Permissions: []string{"image_generation"}}
	h := plugintest.New(t, wasm, plugintest.Options{Entry: entry, Caller: &alice})
	tool, ok := h.Host().Tools().Tool("generateImage")
	if !ok || !slices.Equal(tool.Rules.Permissions, []string{"image_generation"}) {
		t.Fatalf("generateImage = %+v, want it requiring image_generation", tool)
	}

	call := func(prompt string, steps int) ([]byte, []plugin.Progress, time.Duration) {
		t.Helper()
		var prog []plugin.Progress
		args, _ := json.Marshal(map[string]any{"prompt": prompt, "steps": steps})
		start := time.Now()
		res, err := h.Host().Call(context.Background(), "generateImage", args, alice,
			plugin.CallOptions{CallID: "ref", Progress: func(p plugin.Progress) { prog = append(prog, p) }})
		took := time.Since(start)
		if err != nil || res.IsError || len(res.Content) != 2 {
			t.Fatalf("generateImage(%q, %d) = %+v, %v", prompt, steps, res, err)
		}
		img := res.Content[0]
		if img.Type != abi.ContentImage || img.MimeType != "image/png" || !strings.Contains(res.Content[1].Text, "Offline preview") {
			t.Fatalf("content = %s %s + %q, want a PNG and the preview note", img.Type, img.MimeType, res.Content[1].Text)
		}
		return img.Data, prog, took
	}

	first, prog, _ := call("a lighthouse in a storm", 8)
	decoded, err := png.Decode(bytes.NewReader(first))
	if err != nil || decoded.Bounds().Dx() != 512 || decoded.Bounds().Dy() != 512 {
		t.Fatalf("the PNG decodes to %v, %v; want 512×512", decoded.Bounds(), err)
	}
	if len(prog) != 9 || prog[8].Progress != prog[8].Total {
		t.Errorf("progress = %+v, want 8 steps and the encoding", prog)
	}
	if again, _, _ := call("a lighthouse in a storm", 8); !bytes.Equal(first, again) {
		t.Error("the same prompt gave a different image in WebAssembly")
	}
	if other, _, _ := call("a lighthouse in calm weather", 8); bytes.Equal(first, other) {
		t.Error("different prompts gave the same image")
	}

	// Latency of warm calls through the host, the numbers README.md quotes.
	for _, steps := range []int{4, 8} {
		var times []time.Duration
		for i := range 5 {
			_, _, took := call(fmt.Sprintf("latency probe %d", i), steps)
			times = append(times, took)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		t.Logf("generateImage 512×512 at %d steps through the host: min %v, median %v, max %v",
			steps, times[0].Round(time.Millisecond), times[2].Round(time.Millisecond), times[4].Round(time.Millisecond))
		if times[2] > 5*time.Second {
			t.Errorf("median latency at %d steps %v, want well under a few seconds", steps, times[2])
		}
	}
}

// TestReferenceGenerateImageHTTP runs the openai backend through the host's
// real HTTP client against a local fake: one image, then a request the fake
// never answers, which must end as a tool error at request_timeout.
func TestReferenceGenerateImageHTTP(t *testing.T) {
	wasm := buildReference(t, "generateimage")
	png8 := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 32)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/images/generations" {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		if req["prompt"] == "hang" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": []any{map[string]any{"b64_json": png8}}})
	}))
	defer srv.Close()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	entry := rootEntry(t, "generateimage")
	local, err := plugin.ParsePluginsFile(fmt.Appendf(nil, "[plugins.generateimage]\nhttp = [%q]\n", "http://localhost:"+port), "plugins.toml")
	if err != nil {
		t.Fatal(err)
	}
	entry.HTTP = append(entry.HTTP, local.Plugins["generateimage"].HTTP...)
	entry.AllowPrivateHosts = true
	entry.Config = map[string]string{}
	for k, v := range rootEntry(t, "generateimage").Config {
		entry.Config[k] = v
	}
	entry.Config["backend"] = "openai"
	entry.Config["openai_base_url"] = "http://localhost:" + port + "/v1"
	entry.Config["request_timeout"] = "300ms"
	alice := abi.Caller{UserID: "user_alice", Permissions: []string{"image_generation"}}
	h := plugintest.New(t, wasm, plugintest.Options{Entry: entry, Caller: &alice})

	res := h.MustCall("generateImage", map[string]any{"prompt": "a cat"})
	if res.IsError || len(res.Content) != 1 || !bytes.Equal(res.Content[0].Data, png8) || res.Content[0].MimeType != "image/png" {
		t.Fatalf("generateImage via the local server = %+v", res)
	}
	res = h.MustCall("generateImage", map[string]any{"prompt": "hang"})
	if !res.IsError || !strings.Contains(res.Content[0].Text, "did not answer within 300ms") {
		t.Fatalf("generateImage against a server that never answers = %+v, want a timeout tool error", res)
	}
}
