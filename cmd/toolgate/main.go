// Command toolgate runs toolgate, a remote MCP server whose tools are
// sandboxed WebAssembly plugins and whose users sign in through WorkOS
// AuthKit.
//
// Usage:
//
//	toolgate serve [flags]       run the server
//	toolgate config [flags]      print the effective configuration
//	toolgate plugin <command>    work with plugins (inspect, new)
//	toolgate grants <command>    list and revoke grants of a running server
//	toolgate clients <command>   list and delete OAuth clients of a running server
//	toolgate audit tail          print (and follow) the audit log of a running server
//	toolgate replicas            list the replicas sharing a running server's store
//	toolgate version             print version information
//
// Run "toolgate <command> -h" for a command's flags and examples. This
// package stays thin: it parses flags, loads the configuration, sets up
// logging and signals, and hands over to core/server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/toolgate/toolgate/core/config"
	"github.com/toolgate/toolgate/core/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// run executes one command line and returns the exit code.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], environ, stdout, stderr)
	case "config":
		return printConfig(args[1:], environ, stdout, stderr)
	case "plugin":
		return plugin(args[1:], stdout, stderr)
	case "grants":
		return grants(args[1:], environ, stdout, stderr)
	case "clients":
		return clients(args[1:], environ, stdout, stderr)
	case "audit":
		return audit(args[1:], environ, stdout, stderr)
	case "replicas":
		return replicas(args[1:], environ, stdout, stderr)
	case "version":
		return version(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "toolgate: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `toolgate is a remote MCP server whose tools are sandboxed WebAssembly plugins.

Usage:
  toolgate <command> [flags]

Commands:
  serve     run the server (development mode unless WORKOS_CLIENT_ID is set)
  config    print the effective configuration as TOML, secrets redacted
  plugin    work with plugins: inspect, new
  grants    list and revoke grants (sign-ins) of a running server
  clients   list and delete OAuth clients of a running server
  audit     audit tail: print and follow tool calls and denials of a running server
  replicas  list the replicas sharing a running server's store and their plugin sets
  version   print version and build information

Run "toolgate <command> -h" for the flags and examples of a command.
Configuration: defaults < toolgate.toml < environment < flags; see docs/configuration.md.
`)
}

// serve runs the server until SIGINT or SIGTERM.
func serve(args, environ []string, stdout, stderr io.Writer) int {
	fs, cf := newConfigFlagSet("serve", stderr)
	if code, done := parseFlags(fs, args, stdout, serveHelp); done {
		return code
	}
	loaded, err := cf.load(environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	cfg := loaded.Config
	logger := server.NewLogger(stderr, cfg.Log)
	for _, w := range loaded.Warnings {
		logger.Warn(w)
	}
	logger.Info("configuration loaded", "file", loaded.File, "production", cfg.Production())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	if err := server.Run(ctx, cfg, logger); err != nil {
		if errors.Is(err, server.ErrDataDirLocked) {
			dir, absErr := filepath.Abs(cfg.Store.Dir)
			if absErr != nil {
				dir = cfg.Store.Dir
			}
			fmt.Fprintf(stderr, "toolgate: data directory %q is in use by another toolgate process; stop it, or point store.dir (-data-dir) at another directory\n", dir)
			return exitError
		}
		fmt.Fprintf(stderr, "toolgate: %v\n", err)
		return exitError
	}
	return exitOK
}

// printConfig prints the effective configuration as TOML.
func printConfig(args, environ []string, stdout, stderr io.Writer) int {
	fs, cf := newConfigFlagSet("config", stderr)
	if code, done := parseFlags(fs, args, stdout, configHelp); done {
		return code
	}
	loaded, err := cf.load(environ)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	for _, w := range loaded.Warnings {
		fmt.Fprintf(stderr, "toolgate: warning: %s\n", w)
	}
	out, err := loaded.Config.TOML()
	if err != nil {
		fmt.Fprintf(stderr, "toolgate: %v\n", err)
		return exitError
	}
	file := loaded.File
	if file == "" {
		file = "none"
	}
	mode := "development"
	if loaded.Config.Production() {
		mode = "production"
	}
	fmt.Fprintf(stdout, "# Effective toolgate configuration (%s mode). File: %s. Secrets are shown as %q.\n\n", mode, file, config.Redacted)
	_, _ = stdout.Write(out)
	return exitOK
}
