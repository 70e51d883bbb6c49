package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/toolgate/toolgate/cmd/toolgate/internal/scaffold"
	pluginhost "github.com/toolgate/toolgate/core/plugin"
)

func init() {
	for i := range pluginCommands {
		switch pluginCommands[i].name {
		case "inspect":
			pluginCommands[i].run = pluginInspect
		case "new":
			pluginCommands[i].run = pluginNew
		}
	}
}

// pluginInspect prints a plugin file's manifest as JSON.
func pluginInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("toolgate plugin inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if code, done := parseArgs(fs, args, 1, stdout, inspectHelp); done {
		return code
	}
	info, err := pluginhost.Inspect(context.Background(), fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "toolgate plugin inspect: %v\n", err)
		return exitError
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(info); err != nil {
		fmt.Fprintf(stderr, "toolgate plugin inspect: %v\n", err)
		return exitError
	}
	if len(info.Problems) > 0 {
		fmt.Fprintf(stderr, "toolgate plugin inspect: %s has %d problem(s) the server would refuse it for; see \"problems\"\n", fs.Arg(0), len(info.Problems))
		return exitError
	}
	return exitOK
}

func inspectHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate plugin inspect FILE.wasm

Load a plugin in a throwaway sandbox (no grants, nothing cached) and print,
as JSON: its file size and sha256 (for a pin in plugins.toml), the ABI
version it speaks, and its manifest: plugin name and version, each tool
with its input schema and required permissions, and the capabilities it
asks for (which plugins.toml must grant). Problems that would make the
server refuse the plugin are listed under "problems", and the exit status
is then 1.

Examples:
  toolgate plugin inspect plugins/dist/add.wasm
  toolgate plugin inspect plugins/dist/add.wasm | jq .manifest.tools
`)
}

// pluginNew scaffolds a plugin folder.
func pluginNew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("toolgate plugin new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "")
	if code, done := parseArgs(fs, args, 1, stdout, newHelp); done {
		return code
	}
	name := fs.Arg(0)
	if *dir == "" {
		*dir = filepath.Join("plugins", name)
	}
	if err := scaffold.Generate(*dir, name); err != nil {
		fmt.Fprintf(stderr, "toolgate plugin new: %v\n", err)
		return exitError
	}
	pkg := filepath.ToSlash(*dir)
	if !filepath.IsAbs(*dir) {
		pkg = "./" + pkg
	}
	fmt.Fprintf(stdout, `created plugin %[1]q in %[2]s

next steps:
  go test %[2]s    # run its tests natively
  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugins/dist/%[1]s.wasm %[2]s
  toolgate plugin inspect plugins/dist/%[1]s.wasm
%[3]s/README.md says how to install and grant it.
`, name, pkg, filepath.ToSlash(*dir))
	return exitOK
}

func newHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate plugin new [-dir DIR] NAME

Create a new plugin: a Go program using toolgate's SDK with one tool called
NAME, a native test of it, and a README saying how to build, test, install
and grant it. NAME is 1 to 64 characters of a-z, 0-9, '_' and '-',
starting with a letter.

Flags:
  -dir DIR
    	folder to create; it must not exist or be empty (default plugins/NAME)
  -h
    	show this help

Examples:
  toolgate plugin new weather
  toolgate plugin new -dir ../my-plugins/weather weather
`)
}

// parseArgs parses flags and wants exactly n positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, n int, stdout io.Writer, help func(io.Writer)) (code int, done bool) {
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(stdout)
			return exitOK, true
		}
		fmt.Fprintln(fs.Output())
		help(fs.Output())
		return exitUsage, true
	}
	if fs.NArg() != n {
		fmt.Fprintf(fs.Output(), "%s: want %d argument(s), got %d\n\n", fs.Name(), n, fs.NArg())
		help(fs.Output())
		return exitUsage, true
	}
	return 0, false
}
