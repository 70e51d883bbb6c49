package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/toolgate/toolgate"

// pkg is what the rules need from `go list -json`.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

// listPackages runs go list over the whole module with extra environment
// (for example GOOS=wasip1).
func listPackages(t *testing.T, env ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Deps,Error", module+"/...")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", env, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// isStd reports whether an import path belongs to the standard library:
// its first element has no dot (the rule the go command itself uses).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// violations applies the rules to a package list and returns one message
// for each broken rule.
func violations(pkgs []pkg) []string {
	var out []string
	sdk := module + "/sdk"
	for _, p := range pkgs {
		direct := slices.Concat(p.Imports, p.TestImports, p.XTestImports)

		// sdk/... and plugins/...: the standard library and sdk/... only,
		// transitively for the code and directly for the tests (whose own
		// imports are checked as packages in their own right).
		if within(p.ImportPath, sdk) || within(p.ImportPath, module+"/plugins") {
			for _, d := range slices.Concat(p.Deps, direct) {
				if !isStd(d) && !within(d, sdk) {
					out = append(out, fmt.Sprintf("%s imports %s: sdk and plugins may import only the standard library and sdk", p.ImportPath, d))
				}
			}
		}

		// core/store (the contract itself): the standard library only.
		if p.ImportPath == module+"/core/store" {
			for _, d := range slices.Concat(p.Deps, direct) {
				if !isStd(d) {
					out = append(out, fmt.Sprintf("%s imports %s: the storage contract may import only the standard library", p.ImportPath, d))
				}
			}
		}

		// core/store/internal/... (code the backends share): the standard
		// library, core/store and core/store/internal/... only, so it
		// carries no backend's dependencies into another.
		if within(p.ImportPath, module+"/core/store/internal") {
			for _, d := range slices.Concat(p.Deps, direct) {
				if !isStd(d) && d != module+"/core/store" && !within(d, module+"/core/store/internal") {
					out = append(out, fmt.Sprintf("%s imports %s: core/store/internal may import only the standard library and core/store", p.ImportPath, d))
				}
			}
		}

		// core/internal/testutil is for tests: no package's own code
		// imports it.
		for _, d := range p.Imports {
			if within(d, module+"/core/internal/testutil") {
				out = append(out, fmt.Sprintf("%s imports %s: core/internal/testutil is for tests only", p.ImportPath, d))
			}
		}

		// Only cmd/toolgate imports core/server and cmd/...; a package may
		// import itself from its external tests.
		for _, d := range direct {
			if !within(d, module+"/core/server") && !within(d, module+"/cmd") {
				continue
			}
			if within(p.ImportPath, module+"/cmd/toolgate") || p.ImportPath == d {
				continue
			}
			out = append(out, fmt.Sprintf("%s imports %s: only cmd/toolgate may import core/server and cmd/...", p.ImportPath, d))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// trackSources opens every directory and stats every Go file and go.mod
// of the module. go list runs in a child process whose reads the test
// cache cannot see; touching the files here makes go test rerun this test
// whenever any of them, or the set of files, changes.
func trackSources(t *testing.T) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if _, err := os.Stat(gomod); err != nil {
		t.Fatalf("go.mod: %v", err)
	}
	err = filepath.WalkDir(filepath.Dir(gomod), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "node_modules" || name == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("walking the module: %v", err)
	}
}

func TestDependencyDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	trackSources(t)
	for _, env := range [][]string{nil, {"GOOS=wasip1", "GOARCH=wasm"}} {
		t.Run(strings.Join(append([]string{"native"}, env...), " "), func(t *testing.T) {
			pkgs := listPackages(t, env...)
			for _, p := range pkgs {
				if p.Error != nil && !strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
					t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
				}
			}
			for _, v := range violations(pkgs) {
				t.Error(v)
			}
		})
	}
}

// TestRules checks that each rule catches what it should, so a green
// TestDependencyDirection means something.
func TestRules(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	tests := []struct {
		name string
		pkgs []pkg
		want int
	}{
		{"clean tree", []pkg{
			{ImportPath: m("sdk"), Imports: []string{"encoding/json", m("sdk/abi")}, Deps: []string{"encoding/json", m("sdk/abi")}},
			{ImportPath: m("plugins/add"), Imports: []string{m("sdk")}, Deps: []string{m("sdk"), "context"}},
			{ImportPath: m("core/store"), Imports: []string{"time"}, Deps: []string{"time"}},
			{ImportPath: m("core/store/internal/changefeed"), Imports: []string{"sync", m("core/store")}, Deps: []string{"sync", "time", m("core/store")}},
			{ImportPath: m("cmd/toolgate"), Imports: []string{m("core/server"), m("cmd/toolgate/internal/scaffold")}},
			{ImportPath: m("core/server"), XTestImports: []string{m("core/server")}},
		}, 0},
		{"sdk imports core", []pkg{{ImportPath: m("sdk"), Imports: []string{m("core/plugin")}, Deps: []string{m("core/plugin")}}}, 1},
		{"sdk depends on a third party transitively", []pkg{{ImportPath: m("sdk/sdktest"), Deps: []string{"github.com/tetratelabs/wazero"}}}, 1},
		{"plugin test imports core", []pkg{{ImportPath: m("plugins/add"), TestImports: []string{m("core/plugin/plugintest")}}}, 1},
		{"store contract imports badger", []pkg{{ImportPath: m("core/store"), Deps: []string{"github.com/dgraph-io/badger/v4"}}}, 1},
		{"code imports the test helpers", []pkg{{ImportPath: m("core/auth"), Imports: []string{m("core/internal/testutil")}, TestImports: []string{m("core/internal/testutil")}}}, 1},
		{"shared store code imports a backend", []pkg{{ImportPath: m("core/store/internal/changefeed"), Deps: []string{m("core/store/pgstore"), "github.com/jackc/pgx/v5"}}}, 2},
		{"core imports server", []pkg{{ImportPath: m("core/gate"), Imports: []string{m("core/server")}}}, 1},
		{"core test imports cmd", []pkg{{ImportPath: m("core/plugin"), TestImports: []string{m("cmd/toolgate/internal/scaffold")}}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(tt.pkgs); len(got) != tt.want {
				t.Errorf("violations = %q, want %d", got, tt.want)
			}
		})
	}
}
