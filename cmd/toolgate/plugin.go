package main

import (
	"fmt"
	"io"
)

// subcommand is one "toolgate plugin" command.
type subcommand struct {
	name    string
	summary string
	// run executes the command; nil while the command is not part of
	// this build.
	run func(args []string, stdout, stderr io.Writer) int
}

// pluginCommands are the "toolgate plugin" commands, in help order.
var pluginCommands = []subcommand{
	{name: "inspect", summary: "print a plugin's manifest (tools, schemas, permissions, capabilities) as JSON"},
	{name: "new", summary: "create the skeleton of a new plugin"},
}

// plugin dispatches "toolgate plugin <command>".
func plugin(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		pluginHelp(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		pluginHelp(stdout)
		return exitOK
	}
	for _, c := range pluginCommands {
		if c.name != args[0] {
			continue
		}
		if c.run == nil {
			fmt.Fprintf(stderr, "toolgate plugin %s: not available in this build\n", c.name)
			return exitError
		}
		return c.run(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "toolgate plugin: unknown command %q\n\n", args[0])
	pluginHelp(stderr)
	return exitUsage
}

func pluginHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate plugin <command> [arguments]

Work with toolgate's WebAssembly plugins.

Commands (subcommands: inspect, new):
`)
	for _, c := range pluginCommands {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "toolgate plugin <command> -h" for a command's flags.

Examples:
  toolgate plugin inspect plugins/dist/add.wasm
  toolgate plugin new myplugin
`)
}
