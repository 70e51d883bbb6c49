package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/toolgate/toolgate/core/config"
)

// configFlag is a flag that overrides one configuration key.
type configFlag struct {
	name  string // flag name, without the dash
	key   string // configuration key path
	arg   string // placeholder in the help text
	usage string // what it sets, one sentence
}

// configFlags are the configuration keys settable on the command line of
// serve and config. Every other key is set in toolgate.toml or the
// environment.
var configFlags = []configFlag{
	{"listen", "server.listen", "ADDR", "TCP address to listen on, as host:port"},
	{"public-url", "server.public_url", "URL", "URL clients use to reach the server"},
	{"admin-listen", "server.admin_listen", "ADDR", "loopback address of the operator endpoint (toolgate grants, clients, audit); \"\" disables it"},
	{"data-dir", "store.dir", "DIR", "directory the store keeps its files in"},
	{"plugins-dir", "plugins.dir", "DIR", "drop-in folder of .wasm plugins"},
	{"plugins-config", "plugins.config", "FILE", "the plugins file (plugin list, grants, permission rules)"},
	{"log-level", "log.level", "LEVEL", "least severe level logged: debug, info, warn or error"},
	{"log-format", "log.format", "FORMAT", "log format: auto, text or json"},
}

// configFlagValues holds what the user gave on the command line.
type configFlagValues struct {
	fs     *flag.FlagSet
	file   string
	values map[string]*string
}

// newConfigFlagSet returns a FlagSet with -config and every configFlag.
// Flags default to empty so that only flags the user set override the
// lower layers; the help text shows the built-in defaults instead.
func newConfigFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *configFlagValues) {
	fs := flag.NewFlagSet("toolgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &configFlagValues{fs: fs, values: map[string]*string{}}
	fs.StringVar(&cf.file, "config", "", "")
	for _, f := range configFlags {
		cf.values[f.name] = fs.String(f.name, "", "")
	}
	fs.Usage = func() {} // parseFlags prints the help
	return fs, cf
}

// load builds the configuration with the flags the user set as overrides.
func (cf *configFlagValues) load(environ []string) (*config.Loaded, error) {
	var overrides []config.Override
	cf.fs.Visit(func(fl *flag.Flag) {
		for _, f := range configFlags {
			if f.name == fl.Name {
				overrides = append(overrides, config.Override{Key: f.key, Value: *cf.values[f.name], Source: "flag -" + f.name})
			}
		}
	})
	return config.Load(config.Options{File: cf.file, Environ: environ, Overrides: overrides})
}

// parseFlags parses args. It reports done with an exit code when the
// command should stop: after -h (help on stdout, success) or on a bad
// flag (the flag package already printed the problem and the usage).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, help func(io.Writer)) (code int, done bool) {
	fs.Usage = func() {} // printed below, once, on the right stream
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(stdout)
		return exitOK, true
	case err != nil:
		fmt.Fprintln(fs.Output())
		help(fs.Output())
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n\n", fs.Name(), fs.Arg(0))
		help(fs.Output())
		return exitUsage, true
	}
	return 0, false
}

// printConfigFlags writes the flag section of serve's and config's help.
func printConfigFlags(w io.Writer) {
	def := config.Default()
	defaults, _ := def.TOML()
	fmt.Fprintf(w, "Flags:\n")
	fmt.Fprintf(w, "  -config FILE\n    \tconfiguration file ($%s; default %q if it exists)\n", config.ConfigFileEnv, config.DefaultFile)
	for _, f := range configFlags {
		fmt.Fprintf(w, "  -%s %s\n    \t%s (%s, $%s; default %s)\n", f.name, f.arg, f.usage, f.key, config.EnvName(f.key), defaultOf(string(defaults), f.key))
	}
	fmt.Fprintf(w, "  -h\n    \tshow this help\n")
}

// defaultOf finds a key's default in the rendered default TOML, so the
// help text always matches config.Default.
func defaultOf(doc, key string) string {
	section, name, _ := strings.Cut(key, ".")
	in := false
	for line := range strings.SplitSeq(doc, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			in = line == "["+section+"]"
			continue
		}
		if k, v, ok := strings.Cut(line, " = "); in && ok && k == name {
			if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				return strconv.Quote(v[1 : len(v)-1]) // a TOML literal string
			}
			return v
		}
	}
	return "none"
}

func serveHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate serve [flags]

Run the toolgate server until SIGINT or SIGTERM, then finish in-flight
requests (up to server.shutdown_timeout) and exit.

Without WORKOS_CLIENT_ID the server runs in development mode, with the
embedded development AuthKit, and listens on loopback addresses only. With
WORKOS_CLIENT_ID, WORKOS_CLIENT_SECRET and COOKIE_ENCRYPTION_KEY set it
signs users in through WorkOS AuthKit.

It serves the MCP endpoint at <public_url>/mcp (and /sse) behind OAuth:
MCP clients discover, register and sign in through /.well-known/...,
/register, /authorize, /token. In development mode the embedded AuthKit's
login page is at <public_url>/_dev/authkit. The operator endpoint for
"toolgate grants", "clients" and "audit" listens on server.admin_listen
(loopback only). It also serves /healthz (the process is up), /readyz
(every component is ready) and /metrics (Prometheus).

`)
	printConfigFlags(w)
	fmt.Fprint(w, `
Configuration is layered: defaults < toolgate.toml < environment < flags.
Every key is documented in docs/configuration.md and toolgate.example.toml.

Examples:
  toolgate serve
  toolgate serve -listen 127.0.0.1:9000 -public-url http://localhost:9000
  TOOLGATE_LOG_LEVEL=debug toolgate serve -config /etc/toolgate/toolgate.toml
  WORKOS_CLIENT_ID=client_... WORKOS_CLIENT_SECRET=sk_... COOKIE_ENCRYPTION_KEY=... \
    toolgate serve -listen 0.0.0.0:8788 -public-url https://mcp.example.com
`)
}

func configHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: toolgate config [flags]

Print the effective configuration, after defaults, toolgate.toml, the
environment and flags are combined, as TOML. Every secret is printed as
"<redacted>". The configuration is validated first: a problem is reported
on one line and the exit status is 1.

`)
	printConfigFlags(w)
	fmt.Fprint(w, `
Examples:
  toolgate config
  toolgate config -config /etc/toolgate/toolgate.toml
  TOOLGATE_SERVER_PUBLIC_URL=https://mcp.example.com toolgate config > toolgate.toml
`)
}
