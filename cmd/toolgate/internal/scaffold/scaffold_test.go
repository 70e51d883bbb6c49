package scaffold

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"add", true}, {"generate-image", true}, {"who_am_i2", true}, {"a", true},
		{strings.Repeat("a", 64), true}, {strings.Repeat("a", 65), false},
		{"", false}, {"Add", false}, {"2fast", false}, {"-x", false}, {"has space", false},
		{"dot.name", false}, {"ünïcode", false}, {"../escape", false},
	} {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
		}
	}
}

func TestGenerateRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(filepath.Join(dir, "x"), "Bad Name"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Generate with a bad name = %v, want ErrInvalidName", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Generate with a bad name created the folder (stat: %v)", err)
	}
	used := filepath.Join(dir, "used")
	if err := os.MkdirAll(used, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(used, "keep.go"), []byte("package keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(used, "ok"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Generate into a used folder = %v, want a not-empty error", err)
	}
	if err := Generate(filepath.Join(dir, "empty"), "ok"); err != nil {
		t.Errorf("Generate into a new folder: %v", err)
	}
}

// TestGeneratedPluginBuildsAndPasses scaffolds a plugin into its own module
// (replacing github.com/toolgate/toolgate with this checkout), runs its
// test, and builds it for wasip1 as a reactor.
func TestGeneratedPluginBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a plugin with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "sdk", "abi", "abi.go")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	mod := t.TempDir()
	gomod := "module example.com/plugins\n\ngo 1.26.0\n\nrequire github.com/toolgate/toolgate v0.0.0\n\nreplace github.com/toolgate/toolgate => " + root + "\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mod, "weather-now")
	if err := Generate(dir, "weather-now"); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	for _, f := range []string{"main.go", "main_test.go", "README.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	run := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off", "GOTOOLCHAIN=local")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(nil, "vet", ".")
	run(nil, "test", "-count=1", ".")
	wasm := filepath.Join(mod, "weather-now.wasm")
	run([]string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", wasm, ".")
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		t.Fatalf("%s is not a WebAssembly module", wasm)
	}
	for _, export := range []string{"toolgate_abi_version", "toolgate_alloc", "toolgate_manifest", "toolgate_call", "_initialize"} {
		if !strings.Contains(string(b), export) {
			t.Errorf("the module does not mention the export %s", export)
		}
	}
}
