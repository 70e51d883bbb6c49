package plugintest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/plugin/plugintest"
)

func build(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func TestEcho(t *testing.T) {
	h := plugintest.New(t, build(t, "../testdata/echo"), plugintest.Options{})
	if got := h.MustCall("add", map[string]any{"a": 2, "b": 3}).Content[0].Text; got != "5" {
		t.Fatalf("add = %q, want 5", got)
	}
	if _, err := h.Call("add", `{"a":"x"}`); plugin.KindOf(err) != plugin.ErrKindGuest {
		t.Fatalf("bad arguments: %v", err)
	}
	if n := len(h.Tools()); n != 3 {
		t.Fatalf("tools = %d", n)
	}
}

func TestGrantsAndSecrets(t *testing.T) {
	wasm := build(t, "../testdata/faulty")
	grant, err := plugin.ParsePluginsFile([]byte(`
[plugins.faulty]
http = ["127.0.0.1"]
kv = true
progress = true
config = { greeting = "hello" }
secrets = { token = "FAULTY_TOKEN" }
`), "plugins.toml")
	if err != nil {
		t.Fatal(err)
	}
	h := plugintest.New(t, wasm, plugintest.Options{Entry: grant.Plugins["faulty"], Env: map[string]string{"FAULTY_TOKEN": "t0k"}})
	tests := []struct{ tool, args, want string }{
		{"secret", `{"name":"token"}`, "t0k"},
		{"kv", `{"key":"k","value":"v"}`, "v"},
		{"config", `{"name":"greeting"}`, "hello"},
		{"secret", `{"name":"other"}`, `error: status -1: secret "other" is not granted to plugin "faulty"`},
	}
	for _, tt := range tests {
		if got := h.MustCall(tt.tool, []byte(tt.args)).Content[0].Text; got != tt.want {
			t.Errorf("%s(%s) = %q, want %q", tt.tool, tt.args, got, tt.want)
		}
	}
}
