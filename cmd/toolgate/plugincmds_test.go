package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPluginCommandUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		wantOut  string
	}{
		{name: "inspect help", args: []string{"plugin", "inspect", "-h"}, wantCode: exitOK, wantOut: "Usage: toolgate plugin inspect FILE.wasm"},
		{name: "new help", args: []string{"plugin", "new", "-h"}, wantCode: exitOK, wantOut: "Usage: toolgate plugin new [-dir DIR] NAME"},
		{name: "inspect without file", args: []string{"plugin", "inspect"}, wantCode: exitUsage, wantErr: "want 1 argument(s), got 0"},
		{name: "new without name", args: []string{"plugin", "new"}, wantCode: exitUsage, wantErr: "want 1 argument(s), got 0"},
		{name: "inspect missing file", args: []string{"plugin", "inspect", filepath.Join(t.TempDir(), "nope.wasm")}, wantCode: exitError, wantErr: "no such file"},
		{name: "inspect not wasm", args: []string{"plugin", "inspect", writeFile(t, "x.wasm", "not wasm")}, wantCode: exitError, wantErr: "invalid magic number"},
		{name: "new bad name", args: []string{"plugin", "new", "-dir", filepath.Join(t.TempDir(), "p"), "Bad Name"}, wantCode: exitError, wantErr: `"Bad Name"`},
		{name: "unknown", args: []string{"plugin", "frobnicate"}, wantCode: exitUsage, wantErr: `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, []string{}, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantErr)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out, tt.wantOut)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPluginNewWritesScaffold(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "weather")
	code, out, errOut := runCmd(t, []string{}, "plugin", "new", "-dir", dir, "weather")
	if code != exitOK {
		t.Fatalf("exit code %d (stderr %q)", code, errOut)
	}
	for _, f := range []string{"main.go", "main_test.go", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("scaffold lacks %s: %v", f, err)
		}
	}
	if !strings.Contains(out, `created plugin "weather"`) {
		t.Errorf("stdout %q does not confirm", out)
	}
	// A second run refuses to overwrite.
	if code, _, errOut := runCmd(t, []string{}, "plugin", "new", "-dir", dir, "weather"); code != exitError || !strings.Contains(errOut, "not empty") {
		t.Errorf("second run: exit %d, stderr %q; want a refusal", code, errOut)
	}
}

// TestPluginInspectAdd builds the reference add plugin and inspects it.
func TestPluginInspectAdd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a wasm plugin")
	}
	wasm := filepath.Join(t.TempDir(), "add.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "../../plugins/add")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build add.wasm: %v\n%s", err, out)
	}
	code, out, errOut := runCmd(t, []string{}, "plugin", "inspect", wasm)
	if code != exitOK {
		t.Fatalf("exit code %d (stderr %q)", code, errOut)
	}
	var info struct {
		SHA256     string `json:"sha256"`
		ABIVersion int    `json:"abi_version"`
		Manifest   struct {
			Name  string `json:"name"`
			Tools []struct {
				Name        string          `json:"name"`
				InputSchema json.RawMessage `json:"input_schema"`
			} `json:"tools"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if info.ABIVersion != 1 || info.Manifest.Name != "add" || len(info.SHA256) != 64 {
		t.Errorf("info = %+v, want ABI 1, plugin add and a sha256", info)
	}
	if len(info.Manifest.Tools) != 1 || info.Manifest.Tools[0].Name != "add" || !strings.Contains(string(info.Manifest.Tools[0].InputSchema), `"object"`) {
		t.Errorf("tools = %+v, want one object-schema tool add", info.Manifest.Tools)
	}
}
