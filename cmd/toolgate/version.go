package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version prints the module version, VCS information and Go version.
func version(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("toolgate version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	help := func(w io.Writer) {
		fmt.Fprint(w, `Usage: toolgate version

Print toolgate's module version, the commit it was built from (when built
from a git checkout) and the Go version and platform.

Flags:
  -h
    	show this help

Examples:
  toolgate version
`)
	}
	if code, done := parseFlags(fs, args, stdout, help); done {
		return code
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(stdout, "toolgate (no build information)\ngo        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	fmt.Fprint(stdout, formatVersion(info))
	return exitOK
}

// formatVersion renders build information as aligned lines.
func formatVersion(info *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	out := fmt.Sprintf("toolgate %s\nmodule    %s\n", v, info.Main.Path)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		out += fmt.Sprintf("revision  %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		out += fmt.Sprintf("committed %s\n", t)
	}
	goVersion := info.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	out += fmt.Sprintf("go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return out
}
